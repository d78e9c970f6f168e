"""Deployment Procedure / Pre-Deployment."""

from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from relcheck.core import records
from relcheck.core.problems import joined
from relcheck.core.statuses import require
from relcheck.probes import notify

pytestmark = pytest.mark.pre_deploy


@pytest.mark.item("Pre-Deployment", "Backup current system")
def test_backup_current_system(verified_backup, evidence):
    proof = verified_backup
    evidence.kv(
        "Backup",
        {
            "file": proof.path,
            "size": f"{proof.size} bytes",
            "sha256": proof.sha256 or "none",
            "format": "pg_dump -Fc",
            "proof": "pg_restore --exit-on-error --single-transaction into a scratch database",
        },
    )
    evidence.table(
        "Source vs restored",
        ["table", "rows", "restored rows", "checksum", "restored checksum", "equal"],
        [
            (
                c.table,
                c.source_rows,
                c.restored_rows,
                c.source_checksum[:12],
                c.restored_checksum[:12],
                "yes" if c.equal else "NO",
            )
            for c in proof.comparisons
        ],
    )
    require(not proof.unverified, proof.unverified)
    assert not proof.error, proof.error
    different = [c.table for c in proof.comparisons if not c.equal]
    assert proof.comparisons, "the backup restored no tables"
    assert not different, f"restored data differs from the source in: {', '.join(different)}"


@pytest.mark.item("Pre-Deployment", "Notify stakeholders")
def test_notify_stakeholders(release_notice, evidence):
    release_notice.record(evidence)
    require(release_notice.deliveries, notify.NO_CHANNEL)
    assert not release_notice.refused, f"notice not accepted by {release_notice.refused}"


@pytest.mark.item("Pre-Deployment", "Prepare rollback plan")
def test_prepare_rollback_plan(
    relcheck_config,
    target_repo,
    verified_backup,
    downgrade_rehearsal,
    rollback_plan,
    rollback_steps,
    migration_cost,
    evidence,
):
    release = relcheck_config.release
    previous = release.previous_git_ref
    rehearsal = downgrade_rehearsal
    evidence.kv(
        "Rollback target",
        {
            "previous release": f"{release.previous_version} ({previous})",
            "available": target_repo.has_ref(previous),
            "backup": f"{verified_backup.path.name} (proven: {verified_backup.proven})",
            "schema heads": f"{rehearsal.release_head} -> {rehearsal.previous_head}",
        },
    )
    evidence.table(
        "Down-migration rehearsal (scratch copy)", ["step", "outcome", "checked after the step"], rehearsal.steps
    )
    evidence.table("What the down-migration destroys", ["what", "name", "values lost"], rehearsal.destroyed)
    evidence.table(
        "Rows through the down-migration",
        ["table", "rows before the downgrade", "after downgrade"],
        [(t, before, "dropped" if after is None else after) for t, before, after in rehearsal.rows],
    )
    cost = migration_cost
    if cost is not None:
        evidence.kv(
            "What the migration costs (rehearsed on the scratch copy)",
            {
                "predicted blocking time": f"{cost.predicted_blocking_s:.3f} s",
                "allowed (deploy.max_blocking_s)": f"{cost.max_blocking_s:g} s",
                "statements": f"{len(cost.statements)} ({cost.queries} with the tool's own queries)",
                "migration took": f"{cost.seconds:.2f} s",
            },
        )
        evidence.table("Tables before the migration", ["table", "rows", "bytes"], cost.tables)
        evidence.table("Migration statements", ["statement", "seconds", "locks held", "rewrote"], cost.statements)
        evidence.table(
            "Locks against the running service",
            ["relation", "blocks", "lock", "seconds", "taken by", "longest statement meanwhile", "safer form"],
            [(b.relation, b.blocks, b.mode, b.seconds, b.statement, b.slowest, b.safer) for b in cost.blocking],
        )
        evidence.table(
            "Squawk findings",
            ["rule", "statement", "message", "measured"],
            [(f.rule, f.statement, f.message, cost.measured(f.statement)) for f in cost.findings],
        )
    choice = rollback_plan.choice
    evidence.kv(
        "Which rollback is safe (the previous release's code on the scratch copy)",
        {
            "rollback": choice.described,
            "data the downgrade loses": ", ".join(f"{name} ({n})" for _, name, n in rehearsal.data_lost) or "none",
            "failing on the previous release's own schema too (not compared)": ", ".join(choice.excluded) or "none",
        },
    )
    evidence.table(
        "The previous release's code on the scratch copy",
        ["rollback", "step", "request", "expected", "got"],
        [
            (run.stage, "start-up", "health", "healthy", run.unverified or run.health or "healthy")
            for run in rehearsal.previous
        ]
        + [(run.stage, w.name, w.request, w.expected, w.got) for run in rehearsal.previous for w in run.walked],
    )
    evidence.text(
        "Rollback commands for this release",
        "\n".join(f"{n}. {s.name}: {s.plan}" for n, s in enumerate(rollback_steps, 1))
        + f"\n\nor: relcheck rollback --record {records.deploy_record_path(relcheck_config)}",
    )
    plan = rollback_plan
    assert not plan.problems, "; ".join(plan.problems)
    require(not plan.unconfigured, f"the rollback is not verified: {'; '.join(plan.unconfigured)}")
    assert not plan.data_problems, "; ".join(plan.data_problems)
    require(not plan.cost_unverified, plan.cost_unverified)
    require(not choice.unverified, f"which rollback is safe is not verified: {choice.unverified}")


@pytest.mark.item("Pre-Deployment", "Verify dependencies")
def test_verify_dependencies(
    relcheck_config, requirement_pins, dependency_resolution, host_facts, migration_head, evidence
):
    pins, resolution = requirement_pins, dependency_resolution
    assert not pins.problems, "; ".join(pins.problems[:3])
    server = host_facts.database_server
    supported = SpecifierSet(relcheck_config.deploy.supported_postgres)
    major_minor = ".".join(server.split()[0].split(".")[:2])
    evidence.kv(
        "Requirements",
        {
            "files": ", ".join(Path(f).name for f in pins.files),
            "pinned": len(pins.pins),
            "not pinned": ", ".join(pins.not_audited) or "none",
            "resolved together": resolution.detail,
        },
    )
    evidence.table("Resolved", ["distribution", "version"], sorted(resolution.resolved.items()))
    evidence.kv(
        "Platform", {"PostgreSQL server": server, "supported": str(supported), "migration heads": migration_head}
    )
    evidence.kv(
        "Pinned nowhere (pip chose them)", {"distributions": ", ".join(resolution.unpinned_dependencies) or "none"}
    )
    assert not pins.not_audited, f"not pinned to one version: {', '.join(pins.not_audited)}"
    assert supported.contains(major_minor), f"PostgreSQL {major_minor} is outside the supported range {supported}"
    assert resolution.ok is not False, resolution.detail
    require(resolution.ok, f"the pins are not verified: {resolution.detail}")
    require(not resolution.unchecked, f"pins pip did not resolve: {', '.join(resolution.unchecked)}")


@pytest.mark.item("Pre-Deployment", "Check system resources")
def test_check_system_resources(relcheck_config, host_facts, evidence):
    cfg, facts = relcheck_config.deploy, host_facts
    need = facts.needed_disk_bytes(cfg)
    evidence.table(
        "Disk",
        ["for", "path", "free", f"needed ({cfg.disk_multiple:g} x database size)"],
        [(d.what, d.path, f"{d.free_bytes / 2**30:.1f} GiB", f"{need / 2**20:.1f} MiB") for d in facts.disks],
    )
    memory, load = facts.memory_available_mb, facts.load_per_core
    evidence.kv(
        "Host and database",
        {
            "database size": f"{facts.database_bytes / 2**20:.1f} MiB",
            "memory available": f"{memory:.0f} MiB" if memory is not None else "not measured",
            "load per core (1 min)": f"{load:.2f}" if load is not None else "not measured",
            "limits": f"memory >= {cfg.min_memory_mb:g} MiB, load <= {cfg.max_load_per_core:g}",
            "connections": f"{facts.connections_used} of {facts.max_connections} "
            f"(headroom needed {cfg.min_connection_headroom})",
            "measured on": f"{facts.host}; the database server via SQL",
        },
    )
    short = facts.short_of(cfg)
    assert not short, joined(short)
    require(not facts.problems, "; ".join(facts.problems))


@pytest.mark.item("Pre-Deployment", "Prepare monitoring")
def test_prepare_monitoring(relcheck_config, metrics_scrape, smoke_run, monitoring_snapshot, evidence):
    required = relcheck_config.deploy.required_metrics
    missing = [family for family in required if not metrics_scrape.has(family)]
    assert not smoke_run.error, f"the smoke load failed: {smoke_run.error}"
    evidence.table(
        "Required metric families", ["family", "present"], [(f, "NO" if f in missing else "yes") for f in required]
    )
    evidence.table(
        "Smoke load before the deploy",
        ["route", "requests", "p95 ms"],
        [(name, s.count, f"{s.p(95):.1f}") for name, s in sorted(smoke_run.routes.items())],
    )
    evidence.kv("Snapshot", {"saved": monitoring_snapshot, "families scraped": len(metrics_scrape.families)})
    assert not missing, f"metric families missing from {relcheck_config.target.routes.metrics}: {', '.join(missing)}"
    require(smoke_run.routes, "the smoke load measured nothing")
