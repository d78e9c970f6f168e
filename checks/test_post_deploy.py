"""Deployment Procedure / Post-Deployment: the ops smoke after a deploy. The service-status and health checks
also prove the same Post-Rollback items after a rollback (then the previous version must be running)."""

import pytest

from relcheck.core import records
from relcheck.core.marks import after_deploy_and_rollback
from relcheck.core.statuses import require
from relcheck.probes import conformance, judge


@after_deploy_and_rollback("Verify service status")
def test_service_is_running(service_state, expected_version, phase, evidence):
    state = service_state
    status, answer, version = state.status, state.answer, state.version
    wanted = expected_version
    evidence.kv(
        "Service",
        {
            "manager": status.manager,
            "state": status.detail,
            **status.facts,
            "answer": answer.describe(),
            "version source": state.source or "none configured",
            "version": version,
            "expected": wanted,
        },
    )
    assert status.running, f"service is not running: {status.detail}"
    assert answer.status is not None, f"service does not answer: {answer.error}"
    require(version is not None, f"running and answering; the version is not verified: {state.version_problem}")
    assert version == wanted, f"{state.source} reports {version!r}, expected {wanted!r}"


@after_deploy_and_rollback("Run health checks")
def test_health_checks(health, phase, evidence):
    answer = health.answer
    evidence.kv("Health endpoint", {"request": answer.describe(), "time": f"{answer.elapsed_ms:.1f} ms"})
    evidence.text("Health response", answer.text)
    evidence.kv("Database", {"SELECT 1": health.database or "no database configured (target.dsn)"})
    assert answer.status == 200, f"health check failed: {answer.describe()}"
    require(health.database, "the database part is not verified: no database configured (target.dsn)")
    require(health.database_ok, f"the database part is not verified: {health.database}")


@pytest.mark.post_deploy
@pytest.mark.item("Post-Deployment", "Check logs for errors")
def test_check_logs_for_errors(log_since_deploy, relcheck_config, evidence):
    log, found = log_since_deploy.excerpt, log_since_deploy.problems
    evidence.kv(
        "Log",
        {
            "source": log.source,
            "since": f"{log.since.isoformat()} ({log.since_from})",
            "timestamps": log.timestamps,
            "lines read": len(log.lines),
            "error lines": len(found),
            "allow-listed patterns": len(relcheck_config.post_deploy.log_allow),
            "error lines caused by relcheck's own requests (not counted)": len(log_since_deploy.relchecks),
        },
    )
    evidence.log("First error lines", [f"{x.number}: {x.text}" for p in found[:10] for x in [p.line, *p.context]])
    if own := log_since_deploy.relchecks:
        caused = [f"{p.line.number}: {p.line.text} <- {r.shown}" for p, r in own]
        evidence.log("Caused by relcheck's own requests", caused)
    require(log.lines, f"the log ({log.source}) has no lines since the deploy")
    assert not found, (
        f"{len(found)} error line(s) in the log, first (line {found[0].line.number}): {found[0].line.text[:160]}"
    )


@pytest.mark.post_deploy
@pytest.mark.item("Post-Deployment", "Verify metrics collection")
def test_verify_metrics_collection(metrics_collection, relcheck_config, evidence):
    required = relcheck_config.deploy.required_metrics
    require(required, "no required metric families configured (deploy.required_metrics)")
    collected = metrics_collection
    missing = [f for f in required if not collected.has(f)]
    snapshot = records.read(records.monitoring_snapshot_path(relcheck_config)) or {}
    vanished = sorted(f for f in snapshot.get("families", {}) if not collected.has(f))
    counters = relcheck_config.post_deploy.advancing_counters
    grown = collected.counters
    evidence.table(
        f"Required families ({collected.how})",
        ["family", "present"],
        [(f, "NO" if f in missing else "yes") for f in required],
    )
    shown = lambda n: "no series" if n is None else f"{n:.0f}"  # noqa: E731
    rows = [(c, shown(n)) for c, n in grown.items()]
    evidence.table(f"Counters over {collected.traffic or 'no traffic'}", ["counter", "grew by"], rows)
    assert not missing, f"metric families missing: {', '.join(missing)}"
    assert not vanished, f"metric families collected before the deploy are gone: {', '.join(vanished)}"
    require(counters, "no counter configured to watch advance (post_deploy.advancing_counters)")
    require(
        collected.traffic,
        "no traffic the service counts between the scrapes: configure post_deploy.critical_paths "
        "(many services leave the health route out of their request counter)",
    )
    stuck = [c for c, n in grown.items() if not n]
    assert not stuck, f"counter(s) did not advance over {collected.traffic}: {', '.join(stuck)}"


@pytest.mark.post_deploy
@pytest.mark.item("Post-Deployment", "Test critical paths")
def test_critical_paths(critical_paths, post_deploy_conformance, evidence):
    evidence.table(
        "Critical paths",
        ["path", "request", "role", "expected", "got", "missing fields", "ok"],
        [
            (s.name, s.request, s.role, s.expected, s.got, ", ".join(s.missing) or "-", "yes" if s.ok else "NO")
            for s in critical_paths
        ],
    )
    subset, judged = post_deploy_conformance, post_deploy_conformance.judged
    if judged and subset.plan:
        evidence.kv(
            "Conformance subset (Schemathesis, safe methods only)",
            {**judged.run.facts(subset.plan), "compared with": judged.baseline},
        )
        status = ["before the deploy", *conformance.HEADERS]
        evidence.table("Conformance subset failures", status, judged.rows())
        evidence.table("Conformance subset: not tried", ["operation"], [(op,) for op in judged.run.untried])
    else:
        evidence.kv("Conformance subset (Schemathesis, safe methods only)", {"not run": subset.missing})
    failed = [s for s in critical_paths if not s.ok]
    assert not failed, failed[0].problem
    if subset.missing and not subset.off:
        evidence.warn(f"the conformance subset is not verified: {subset.missing}")
    if not judged:
        return
    assert not judged.new, (
        f"{len(judged.new)} conformance failure(s) in production the pre-release run did not find: "
        + conformance.labels(judged.new)
    )
    require(
        not judged.uncompared,
        f"{len(judged.uncompared)} conformance failure(s) in production not compared ({judged.why_uncompared}): "
        + conformance.labels(judged.uncompared),
    )
    if judged.run.incomplete and not subset.missing:
        evidence.warn(f"the conformance subset did not finish: {judged.run.incomplete}")


@pytest.mark.post_deploy
@pytest.mark.item("Post-Deployment", "Monitor performance")
def test_monitor_performance(smoke_run, relcheck_config, evidence):
    perf, run, cfg = relcheck_config.performance, smoke_run, relcheck_config.post_deploy
    assert not run.error, run.error
    require(run.routes, "the smoke load measured nothing")
    snapshot = records.read(records.monitoring_snapshot_path(relcheck_config)) or {}
    before = snapshot.get("smoke", {})
    rows, broken, noisy = [], [], []
    for name, stats in sorted(run.routes.items()):
        for text in perf.sla.routes.get(name, perf.sla.default):
            rule = judge.threshold(text)
            if not rule.holds(rule.measure(stats)):
                broken.append(f"{name} {text} (measured {rule.measure(stats):.1f} ms)")
        earlier = before.get(name, {}).get("p95_ms")
        if (
            earlier
            and stats.p(95) > earlier * cfg.smoke_allowed_increase
            and stats.p(95) - earlier > cfg.smoke_min_increase_ms
        ):
            slower = f"{name} p95 {stats.p(95):.1f} ms, was {earlier:.1f} ms before the deploy"
            samples = before[name].get("samples_ms", [])  # a slowdown fails only when the samples show it
            significant = judge.significantly_slower(samples, stats.samples, perf.baseline.confidence)
            (broken if significant else noisy).append(slower)
        rows.append((name, stats.count, stats.failures, f"{stats.p(95):.1f}", f"{earlier:.1f}" if earlier else "-"))
    evidence.table("Smoke load", ["route", "requests", "failures", "p95 ms", "p95 ms before the deploy"], rows)
    evidence.kv(
        "Judged",
        {
            "SLA": ", ".join(perf.sla.default) + " (per-route overrides apply)",
            "against the pre-deploy smoke": f"slower than x{cfg.smoke_allowed_increase:g} and by more "
            f"than {cfg.smoke_min_increase_ms:g} ms, significantly (Mann-Whitney at "
            f"{perf.baseline.confidence:g}), fails; not significantly warns",
        },
    )
    if not before:
        evidence.warn("no pre-deploy smoke snapshot (run the pre_deploy phase first): judged against the SLA only")
    if noisy:
        evidence.warn("slower, but not significantly with the smoke's few samples: " + "; ".join(noisy[:4]))
    failures = run.total().failures
    assert not failures, f"{failures} request(s) failed under the smoke load"
    assert not broken, "; ".join(broken[:4])
