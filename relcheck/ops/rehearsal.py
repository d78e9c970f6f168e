"""A full rehearsal of deploy and rollback on the embedded target: release N-1 with data -> pre-deploy checks ->
backup -> deploy N -> post-deploy checks -> rollback -> post-rollback checks, with zero rows lost and every
duration reported. Notices to stakeholders are left out: a rehearsal must not page anyone."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from relcheck.core import records
from relcheck.core.config import Config, RequestSpec, load
from relcheck.core.errors import RelcheckError
from relcheck.core.files import write_json
from relcheck.core.statuses import GO, Status, Verdict
from relcheck.core.templates import fill
from relcheck.ops import downgrade, incident
from relcheck.ops.deploy import Host, Procedures, Record, migration_heads
from relcheck.ops.deploy import run as run_procedure
from relcheck.probes import backup
from relcheck.run import runner
from relcheck.target import postgres
from relcheck.target.embedded import EmbeddedRuntime
from relcheck.target.request_specs import base_values, send
from relcheck.target.scratch import DsnParts
from relcheck.target.target import Target


@dataclass
class Phase:
    name: str
    seconds: float
    ok: bool
    detail: str


@dataclass
class Rehearsal:
    phases: list[Phase] = field(default_factory=list)
    rows_lost: int | None = None
    report: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.phases) and all(p.ok for p in self.phases) and self.rows_lost == 0


def seed(target: Target, spec: RequestSpec | None, rows: int) -> str:
    """Data for the old release, written through its API (deploy.rehearsal_seed, repeated with {n}); what it wrote."""
    if spec is None:
        raise RelcheckError("deploy.rehearsal_seed: required: a write request that gives the old release data")
    for n in range(rows):
        answer = send(target, spec, {**base_values(), "n": str(n)})
        if not answer.ok:
            raise RelcheckError(f"seeding failed: {answer.describe()}")
    return f"{rows} writes of {spec.path}"


def checks_phase(rehearsal: Rehearsal, name: str, config: Path, markexpr: str, env: dict, args=()) -> bool:
    """The rehearsal leaves some checks out on purpose (notices): a run narrowed that way is PARTIAL, and counts when
    every check that ran is acceptable or waits only for a person's attestation (no one attests a rehearsal)."""
    outcome = runner.run_checks(config, markexpr, list(args), env)
    ran = [item for item in outcome.manifest.get("items", []) if item["checks"]]
    ok = outcome.verdict in GO or (
        outcome.verdict == Verdict.PARTIAL
        and all(Status(item["status"]).acceptable or item["status"] == Status.PENDING for item in ran)
    )
    why = "; ".join(outcome.manifest.get("verdict_reasons", [])[:3]) or outcome.output.strip().splitlines()[-1:]
    rehearsal.phases.append(
        Phase(name, round(outcome.seconds, 1), ok, f"{outcome.verdict or 'no result'}" + ("" if ok else f": {why}"))
    )
    return ok


def rehearse(cfg: Config, workdir: Path, log=print, changes: dict | None = None) -> Rehearsal:
    rehearsal, release = Rehearsal(), cfg.release
    runtime = EmbeddedRuntime(cfg, faults={})
    started = time.monotonic()

    def phase(name: str, action) -> bool:
        log(f"== {name}")
        t0 = time.monotonic()
        try:
            detail, ok = action(), True
        except Exception as exc:  # a failed phase ends the rehearsal; its reason is the result
            detail, ok = f"{type(exc).__name__}: {exc}", False
        rehearsal.phases.append(Phase(name, round(time.monotonic() - t0, 1), ok, str(detail)))
        log(f"   {'ok' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s: {detail}")
        return ok

    try:
        runtime.pg.start()
        checkout = runtime.workdir / "checkout"
        subprocess.run(["git", "clone", "--quiet", str(cfg.repository), str(checkout)], check=True, timeout=120)
        subprocess.run(["git", "checkout", "--quiet", release.previous_git_ref], cwd=checkout, check=True, timeout=60)
        state: dict = {}

        def old_release() -> str:
            runtime.dsn, runtime.tokens = runtime.prepare_database(checkout, runtime.recipe.database)
            state["target"] = runtime.spawn({}, source=checkout)
            seeded = seed(state["target"], cfg.deploy.rehearsal_seed, cfg.deploy.rehearsal_rows)
            return f"{release.previous_version} running at {state['target'].base_url} with {seeded}"

        if not phase(f"start {release.previous_version} with data", old_release):
            return rehearsal
        target: Target = state["target"]
        env: dict = {}
        data = runner.merge(runner.read_config(cfg.path), runner.pointing_at(target, env))
        # written elsewhere, its relative paths still mean what they meant beside the original config
        data = runner.merge(data, {"reports": str(workdir / "reports"), "base_dir": str(cfg.base), **(changes or {})})
        config_path = runner.write_config(data, workdir / "relcheck.toml")
        os.environ.update(env)  # the secrets the written config names as "env:..."
        checks_cfg = load(config_path)
        # the plan check wants a service manager it can drive; here the rehearsal drives the process it started and
        # runs the plan's parts itself: the down-migration below, the rollback after the deploy
        if not checks_phase(
            rehearsal,
            "pre-deploy checks",
            config_path,
            "pre_deploy",
            env,
            ["-k", "not notify and not prepare_rollback_plan"],
        ):
            return rehearsal
        pg_dump, pg_restore = postgres.client_tool("pg_dump"), postgres.client_tool("pg_restore")
        host = Host(
            checkout,
            [],
            {k: fill(v, DsnParts.of(target.dsn).placeholders("dsn"), "deploy.env") for k, v in cfg.deploy.env.items()},
        )
        procedures = Procedures(checks_cfg, target, host, pg_dump, pg_restore, records.backups_dir(checks_cfg))

        def down_migration() -> str:
            proof = procedures.dump_and_prove(f"rehearsal-{int(time.time())}")
            (previous_head,), (release_head,) = migration_heads(cfg, checkout), migration_heads(cfg, cfg.source)
            result = downgrade.rehearse(
                checks_cfg, target, proof, {"pg_dump": pg_dump, "pg_restore": pg_restore}, previous_head, release_head
            )
            if result.error:
                raise RelcheckError(result.error)
            return "; ".join(f"{step.split(':')[0]}: {checked}" for step, _, checked in result.steps)

        if not phase("rehearse the down-migration on a scratch copy", down_migration):
            return rehearsal

        def deploy() -> str:
            record = Record("deploy", release.product, release.version, release.git_ref)
            run_procedure(
                procedures.deploy(release.git_ref, record), record, log=lambda m: log(f"   {m}"), host=procedures.host
            )
            state["deployed"] = asdict(record)
            record.save(records.deploy_record_path(checks_cfg))
            if not record.ok:
                raise RuntimeError(f"stopped at {record.failed_step}: {record.steps[-1].detail}")
            return (
                f"{release.git_ref} deployed in {sum(s.seconds for s in record.steps):.1f} s "
                f"({', '.join(f'{s.name} {s.seconds:.1f}s' for s in record.steps)})"
            )

        if not phase(f"deploy {release.version}", deploy):
            return rehearsal
        checks_phase(rehearsal, "post-deploy checks", config_path, "post_deploy and not rollback", env)

        def rollback() -> str:
            record = Record("rollback", release.product, release.previous_version, release.previous_git_ref)
            # a rehearsal discards the post-deploy checks' writes on purpose (kept in a proven dump first)
            run_procedure(
                procedures.rollback(release.previous_git_ref, state["deployed"], record, accept_data_loss=True),
                record,
                log=lambda m: log(f"   {m}"),
                host=procedures.host,
            )
            record.save(records.rollback_record_path(checks_cfg))
            incident.write_for(checks_cfg, state["deployed"], asdict(record), "rehearsal")
            if not record.ok:
                raise RuntimeError(f"stopped at {record.failed_step}: {record.steps[-1].detail}")
            return f"back on {release.previous_git_ref} in {sum(s.seconds for s in record.steps):.1f} s"

        if not phase(f"roll back to {release.previous_version}", rollback):
            return rehearsal
        checks_phase(
            rehearsal,
            "post-rollback checks",
            config_path,
            "post_rollback",
            env,
            ["-k", "not notify"],
        )
        with target.database() as conn:
            compared = backup.against_backup(conn, state["deployed"]["backup"]["tables"])
        rehearsal.rows_lost = sum(max(0, (c.source_rows or 0) - (c.restored_rows or 0)) for c in compared)
        different = [c.table for c in compared if not c.equal]
        rehearsal.phases.append(
            Phase(
                "zero rows lost",
                0,
                not different and rehearsal.rows_lost == 0,
                f"{len(compared)} tables equal to the backup"
                if not different
                else f"differs from the backup: {', '.join(different)}",
            )
        )
    finally:
        runtime.stop()
        rehearsal.report = str(write_rehearsal(workdir, rehearsal, time.monotonic() - started))
    return rehearsal


def write_rehearsal(workdir: Path, rehearsal: Rehearsal, seconds: float) -> Path:
    path = workdir / "rehearsal.json"
    write_json(
        path,
        {
            "ok": rehearsal.ok,
            "seconds": round(seconds, 1),
            "rows_lost": rehearsal.rows_lost,
            "phases": [asdict(p) for p in rehearsal.phases],
        },
    )
    return path
