"""A full rehearsal of deploy and rollback on the embedded target: release N-1 with data -> pre-deploy checks ->
backup -> deploy N -> post-deploy checks -> rollback -> post-rollback checks, with zero rows lost and every
duration reported. Notices to stakeholders are left out: a rehearsal must not page anyone."""

from __future__ import annotations

import os
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
from relcheck.probes import backup, migrations, rollbackplan
from relcheck.run import runner
from relcheck.target import commands, postgres
from relcheck.target.embedded import EmbeddedRuntime
from relcheck.target.request_specs import write_repeatedly
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
    return write_repeatedly(target, spec, rows)


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


class Run:
    """One rehearsal: the context its phases share, and one method per phase (each returns what it did, or raises)."""

    def __init__(self, cfg: Config, workdir: Path, log, changes: dict | None) -> None:
        self.cfg, self.workdir, self.log, self.changes = cfg, workdir, log, changes or {}
        self.release = cfg.release
        self.rehearsal = Rehearsal()
        self.runtime = EmbeddedRuntime(cfg, faults={})
        self.checkout = self.runtime.workdir / "checkout"
        self.env: dict = {}  # the secrets the written config names as "env:..."
        self.target: Target
        self.config_path: Path
        self.checks_cfg: Config
        self.procedures: Procedures
        self.deployed: dict = {}

    def phase(self, name: str, action) -> bool:
        """Run a procedure phase; a failed phase ends the rehearsal, its reason is the result."""
        self.log(f"== {name}")
        t0 = time.monotonic()
        try:
            detail, ok = action(), True
        except Exception as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        self.rehearsal.phases.append(Phase(name, round(time.monotonic() - t0, 1), ok, str(detail)))
        self.log(f"   {'ok' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s: {detail}")
        return ok

    def checks(self, name: str, markexpr: str, args=()) -> bool:
        return checks_phase(self.rehearsal, name, self.config_path, markexpr, self.env, args)

    def old_release(self) -> str:
        """Release N-1 from its tag, on a fresh database, with data written through its API."""
        self.runtime.pg.start()
        git = ["git", "clone", "--quiet", str(self.cfg.repository), str(self.checkout)]
        commands.run(git, timeout=120).raise_for("git clone")
        checkout = ["git", "checkout", "--quiet", self.release.previous_git_ref]
        commands.run(checkout, cwd=self.checkout, timeout=60).raise_for("git checkout")
        self.runtime.dsn, self.runtime.tokens = self.runtime.prepare_database(
            self.checkout, self.runtime.recipe.database
        )
        self.target = self.runtime.spawn({}, source=self.checkout)
        seeded = seed(self.target, self.cfg.deploy.rehearsal_seed, self.cfg.deploy.rehearsal_rows)
        self.point_checks_at_it()
        return f"{self.release.previous_version} running at {self.target.base_url} with {seeded}"

    def point_checks_at_it(self) -> None:
        """The config the checks run with: the operator's, pointed at the old release relcheck started; and the
        deploy machinery for it (the rehearsal drives the process it started: no service manager)."""
        data = runner.merge(runner.read_config(self.cfg.path), runner.pointing_at(self.target, self.env))
        # written elsewhere, its relative paths still mean what they meant beside the original config
        data = runner.merge(data, {"reports": str(self.workdir / "reports"), "base_dir": str(self.cfg.base)})
        self.config_path = runner.write_config(runner.merge(data, self.changes), self.workdir / "relcheck.toml")
        os.environ.update(self.env)
        self.checks_cfg = load(self.config_path)
        placeholders = DsnParts.of(self.target.dsn).placeholders("dsn")
        host = Host(self.checkout, [], {k: fill(v, placeholders, "deploy.env") for k, v in self.cfg.deploy.env.items()})
        tools = postgres.client_tool("pg_dump"), postgres.client_tool("pg_restore")
        self.procedures = Procedures(self.checks_cfg, self.target, host, *tools, records.backups_dir(self.checks_cfg))

    def down_migration(self) -> str:
        """The plan's down-migration, rehearsed on a scratch copy of a proven backup."""
        proof = self.procedures.dump_and_prove(f"rehearsal-{int(time.time())}")
        (previous_head,), (release_head,) = (
            migration_heads(self.cfg, self.checkout),
            migration_heads(self.cfg, self.cfg.source),
        )
        tools = {"pg_dump": self.procedures.pg_dump, "pg_restore": self.procedures.pg_restore}
        result = downgrade.rehearse(
            self.checks_cfg, self.target, proof, tools, previous_head, release_head, self.checkout
        )  # the checkout is still at the old release: its code is started on the copy (which rollback is safe)
        if result.error:
            raise RelcheckError(result.error)
        steps = "; ".join(f"{step.split(':')[0]}: {checked}" for step, _, checked in result.steps)
        choice = rollbackplan.choose(
            result.previous, result.data_lost, bool(self.checks_cfg.post_deploy.critical_paths)
        )
        steps += f"; rollback: {choice.described}"
        if result.upgrade is None:
            return steps
        cost = migrations.judge(result.upgrade, {}, self.checks_cfg.deploy.max_blocking_s)
        return f"{steps}; the upgrade's predicted blocking time {cost.predicted_blocking_s:g} s"

    def procedure(self, record: Record, steps) -> Record:
        run_procedure(steps, record, log=lambda m: self.log(f"   {m}"), host=self.procedures.host)
        return record

    def deploy(self) -> str:
        release = self.release
        record = Record("deploy", release.product, release.version, release.git_ref)
        self.procedure(record, self.procedures.deploy(release.git_ref, record))
        self.deployed = asdict(record)
        record.save(records.deploy_record_path(self.checks_cfg))
        if not record.ok:
            raise RuntimeError(f"stopped at {record.failed_step}: {record.steps[-1].detail}")
        timings = ", ".join(f"{s.name} {s.seconds:.1f}s" for s in record.steps)
        return f"{release.git_ref} deployed in {sum(s.seconds for s in record.steps):.1f} s ({timings})"

    def rollback(self) -> str:
        release = self.release
        record = Record("rollback", release.product, release.previous_version, release.previous_git_ref)
        # a rehearsal discards the post-deploy checks' writes on purpose (kept in a proven dump first)
        steps = self.procedures.rollback(release.previous_git_ref, self.deployed, record, accept_data_loss=True)
        self.procedure(record, steps)
        record.save(records.rollback_record_path(self.checks_cfg))
        incident.write_for(self.checks_cfg, self.deployed, asdict(record), "rehearsal")
        if not record.ok:
            raise RuntimeError(f"stopped at {record.failed_step}: {record.steps[-1].detail}")
        return f"back on {release.previous_git_ref} in {sum(s.seconds for s in record.steps):.1f} s"

    def zero_rows_lost(self) -> None:
        with self.target.database() as conn:
            compared = backup.against_backup(conn, self.deployed["backup"]["tables"])
        self.rehearsal.rows_lost = sum(max(0, (c.source_rows or 0) - (c.restored_rows or 0)) for c in compared)
        different = [c.table for c in compared if not c.equal]
        detail = (
            f"{len(compared)} tables equal to the backup"
            if not different
            else f"differs from the backup: {', '.join(different)}"
        )
        self.rehearsal.phases.append(
            Phase("zero rows lost", 0, not different and self.rehearsal.rows_lost == 0, detail)
        )

    def all_phases(self) -> None:
        release = self.release
        # the plan check wants a service manager it can drive; here the rehearsal runs the plan's parts itself:
        # the down-migration, the rollback after the deploy. Notices are left out: a rehearsal pages no one.
        if (
            self.phase(f"start {release.previous_version} with data", self.old_release)
            and self.checks("pre-deploy checks", "pre_deploy", ["-k", "not notify and not prepare_rollback_plan"])
            and self.phase("rehearse the down-migration on a scratch copy", self.down_migration)
            and self.phase(f"deploy {release.version}", self.deploy)
        ):
            self.checks("post-deploy checks", "post_deploy and not rollback")
            if self.phase(f"roll back to {release.previous_version}", self.rollback):
                self.checks("post-rollback checks", "post_rollback", ["-k", "not notify"])
                self.zero_rows_lost()


def rehearse(cfg: Config, workdir: Path, log=print, changes: dict | None = None) -> Rehearsal:
    run, started = Run(cfg, workdir, log, changes), time.monotonic()
    try:
        run.all_phases()
    finally:
        run.runtime.stop()
        run.rehearsal.report = str(write_rehearsal(workdir, run.rehearsal, time.monotonic() - started))
    return run.rehearsal


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
