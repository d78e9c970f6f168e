"""The seed's Deployment and Rollback Procedures, executed step by step through a service manager: each step timed
and logged, the first failure stops the procedure and says how to roll back; a dry run prints the plan.

    Deployment: stop services, back up data (proven by a restore), deploy the new code (checkout + install),
                run migrations, start services.
    Rollback:   stop services, restore the backup, deploy the previous version, start services.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from relcheck.core import records
from relcheck.core.config import Config
from relcheck.core.errors import RelcheckError, ToolError
from relcheck.core.files import write_json
from relcheck.core.secrets import redact
from relcheck.core.templates import fill
from relcheck.probes import backup
from relcheck.target import postgres, remote, scratch
from relcheck.target.commands import telling_line
from relcheck.target.environment import command_env
from relcheck.target.service import wait_until
from relcheck.target.target import Target


@dataclass
class Step:
    name: str
    plan: str  # what the step does, for dry runs and logs
    action: Callable[[], str]  # returns a detail line; raises RelcheckError on failure


@dataclass
class CommandRun:
    """One command a step ran: its exit status and a digest of its whole output (stdout, then stderr)."""

    command: str
    exit: int | None  # None: not found or timed out
    output_sha256: str


@dataclass
class StepResult:
    name: str
    plan: str
    seconds: float
    ok: bool
    detail: str
    started: str = ""
    finished: str = ""
    commands: list[CommandRun] = field(default_factory=list)


@dataclass
class Record:
    kind: str  # "deploy" or "rollback"
    product: str
    version: str
    ref: str
    started: str = ""
    finished: str = ""
    ok: bool = False
    failed_step: str = ""
    steps: list[StepResult] = field(default_factory=list)
    backup: dict = field(default_factory=dict)
    safety_dump: dict = field(default_factory=dict)  # rollback: the data as it was before the restore
    discarded: list[dict] = field(default_factory=list)  # rollback: what the restore threw away
    data_integrity: dict = field(default_factory=dict)  # rollback: the restored database against the backup
    next_action: str = ""

    def save(self, path: Path) -> Path:
        write_json(path, asdict(self))
        return path


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Host:
    """Where deployment commands run: this machine, or the service host through a command prefix (ssh)."""

    def __init__(self, checkout: Path, prefix: list[str], env: dict[str, str], timeout: float = 900) -> None:
        self.checkout, self.prefix, self.env, self.timeout = checkout, prefix, env, timeout
        self.ran: list[CommandRun] = []  # every command run so far, for the deploy record

    def describe(self, command: list[str]) -> str:
        return redact(f"(cd {self.checkout} && {remote.shown(self.prefix, command)})")

    def run(self, command: list[str], what: str) -> str:
        """The command in the checkout; through the prefix, the environment (secrets too) goes on stdin."""
        if self.prefix:
            full, stdin = remote.through(self.prefix, command, self.env, self.checkout)
            env, cwd = None, None
        else:
            full, stdin, env, cwd = command, None, command_env(self.env), self.checkout
        shown = self.describe(command)
        try:
            result = subprocess.run(
                full, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=self.timeout
            )
        except FileNotFoundError:
            self.ran.append(CommandRun(shown, None, digest("")))
            raise ToolError(f"{what}: command not found: {full[0]}") from None
        except subprocess.TimeoutExpired:
            self.ran.append(CommandRun(shown, None, digest("")))
            raise ToolError(f"{what}: did not finish within {self.timeout:g}s") from None
        self.ran.append(CommandRun(shown, result.returncode, digest(result.stdout + result.stderr)))
        if result.returncode != 0:
            raise ToolError(f"{what} failed (exit {result.returncode}): {telling_line(result.stderr or result.stdout)}")
        return redact(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else "ok"


def digest(output: str) -> str:
    return hashlib.sha256(output.encode()).hexdigest()


def run(procedure: list[Step], record: Record, log=print, dry_run: bool = False, host: Host | None = None) -> Record:
    """Run the steps in order; stop at the first failure. host: where the steps' commands ran (their exit statuses
    and output digests go into the record)."""
    record.started = now()
    for number, step in enumerate(procedure, 1):
        if dry_run:
            log(f"{number}. {step.name}: {step.plan}")
            continue
        started_at, ran_before = now(), len(host.ran) if host else 0
        log(f"[{started_at}] {number}. {step.name} ...")
        started = time.monotonic()
        try:
            detail, ok = step.action(), True
        except RelcheckError as exc:
            detail, ok = str(exc), False
        result = StepResult(
            step.name,
            step.plan,
            round(time.monotonic() - started, 3),
            ok,
            detail,
            started_at,
            now(),
            host.ran[ran_before:] if host else [],
        )
        record.steps.append(result)
        log(f"[{now()}] {number}. {step.name}: {'done' if ok else 'FAILED'} in {result.seconds:.1f} s — {detail}")
        if not ok:
            record.failed_step = step.name
            record.next_action = next_action(procedure, step, record)
            log(f"next: {record.next_action}")
            break
    record.ok = not dry_run and not record.failed_step
    record.finished = now()
    return record


def next_action(procedure: list[Step], failed: Step, record: Record) -> str:
    """What to do after a failed step. A deploy that failed before the code changed: start the old release again;
    after: roll back. A rollback that changed nothing (refused, or stopped before the restore): the release that was
    deployed is still installed but stopped; one that stopped after the restore began: the data it replaced is in
    the safety dump."""
    names = [s.name for s in procedure]
    before_code = "Deploy code" in names and names.index(failed.name) < names.index("Deploy code")
    if record.kind == "deploy":
        if before_code:
            return "nothing was changed yet: start the service again (the old release is still installed)"
        return "roll back: relcheck rollback (restores the backup and the previous release)"
    detail = record.steps[-1].detail
    if "nothing was changed" in detail and "did not start again" not in detail:
        return "nothing was changed and the deployed release runs again: resolve the cause above, then roll back again"
    if failed.name == "Stop application services" or "nothing was changed" in detail:
        return (
            "nothing was changed, but the service may be stopped with the deployed release still installed: start "
            "it, resolve the cause above, then run relcheck rollback again"
        )
    kept = record.safety_dump.get("path", "no safety dump was taken")
    return f"the rollback stopped part-way: the data it replaced is in {kept}; resolve the cause and run it again"


def migration_heads(cfg: Config, source: Path) -> list[str]:
    """The schema heads a service tree ships, as its migration tool prints them (docs.migration_head)."""
    from relcheck.target.target import run_step

    python = cfg.python(cfg.deploy.python)
    output = run_step(
        [fill(a, {"python": python}, "docs.migration_head") for a in cfg.docs.migration_head],
        command_env({}),
        cfg.in_app(source),
        "migration head",
        120,
    )
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def wait_healthy(target: Target, timeout: float) -> str:
    if not wait_until(lambda: target.health().status == 200, timeout, interval=0.2):
        raise ToolError(f"service not healthy within {timeout:g}s ({target.health().describe()})")
    return f"healthy: {target.health().describe()}"


class Procedures:
    """The two procedures for one target, host and backup location."""

    def __init__(self, cfg: Config, target: Target, host: Host, pg_dump: str, pg_restore: str, backups: Path) -> None:
        self.cfg, self.target, self.host = cfg, target, host
        self.pg_dump, self.pg_restore, self.backups = pg_dump, pg_restore, backups
        self.values = {"python": cfg.python(cfg.deploy.python)}

    def command(self, template: list[str], **extra) -> list[str]:
        return [fill(a, {**self.values, **extra}, "deploy") for a in template]

    def deploy_code(self, ref: str) -> list[Step]:
        d = self.cfg.deploy
        fetch, checkout, install = self.command(d.fetch), self.command(d.checkout_ref, ref=ref), self.command(d.install)
        return [
            Step(
                "Deploy code",
                f"{self.host.describe(fetch)}; {self.host.describe(checkout)}; {self.host.describe(install)}",
                lambda: " / ".join(
                    self.host.run(c, n)
                    for c, n in ((fetch, "git fetch"), (checkout, "git checkout"), (install, "pip install"))
                ),
            )
        ]

    def stop(self) -> Step:
        return Step(
            "Stop application services",
            self.target.service.describe("stop"),
            lambda: (self.target.service.stop(), "stopped")[1],
        )

    def start(self) -> Step:
        def start_and_wait() -> str:
            self.target.service.start()
            return wait_healthy(self.target, self.cfg.deploy.health_timeout_s)

        return Step("Start services", f"{self.target.service.describe('start')}, then wait for health", start_and_wait)

    def dump_and_prove(self, stem: str) -> backup.Proof:
        """pg_dump (or the backup command) of the live database into a new 0600 file, proven by a restore into a
        scratch database that is dropped right after (see backup.prove: writes meanwhile do not fail it); old dumps
        beyond deploy.backups_keep are pruned."""
        dump = backup.new_dump_file(self.backups, stem)
        custom = self.cfg.deploy.backup_command

        def run_backup_command() -> None:  # {dsn} without its password; the password in the environment (PGPASSWORD)
            visible, secret = postgres.for_command_line(self.target.dsn)
            host = Host(self.host.checkout, self.host.prefix, {**self.host.env, **secret}, self.host.timeout)
            host.run(self.command(custom, pg_dump=self.pg_dump, dsn=visible, dump=str(dump)), "backup")

        with scratch.scratch_database(self.target, "backup_proof") as copy:
            command = run_backup_command if custom else None
            proof = backup.prove(dump, self.target.dsn, copy.dsn, self.pg_dump, self.pg_restore, command)
        deployed = records.read(records.deploy_record_path(self.cfg)) or {}
        kept = {dump} | ({Path(deployed["backup"]["path"])} if deployed.get("backup") else set())
        backup.prune(self.backups, self.cfg.deploy.backups_keep, kept)
        return proof

    def deploy(self, ref: str, record: Record) -> list[Step]:
        live = postgres.database_name(self.target.dsn)
        migrate = self.command(self.cfg.deploy.migrate)

        def back_up() -> str:
            proof = self.dump_and_prove(f"{live}-before-{record.version}-{int(time.time())}")
            record.backup = {
                "path": str(proof.path),
                "sha256": proof.sha256,
                "size": proof.size,
                "tables": {t: asdict(f) for t, f in proof.source.items()},
            }
            if not proof.proven:
                raise ToolError(f"backup not proven by a restore: {proof.problem}")
            return (
                f"{proof.path.name}: {proof.size} bytes, sha256 {proof.sha256[:16]}…, restore matched "
                f"{len(proof.comparisons)} tables"
            )

        return [
            self.stop(),
            Step(
                "Backup data",
                f"pg_dump -Fc of {live} into {self.backups} (0600), proven by pg_restore into a scratch database",
                back_up,
            ),
            *self.deploy_code(ref),
            Step("Run migrations", self.host.describe(migrate), lambda: self.host.run(migrate, "migrate"))
            if migrate
            else Step("Run migrations", "none: the service has no migrations (deploy.migrate = [])", lambda: "none"),
            self.start(),
        ]

    def discarded_by_restore(self, dump: Path) -> list[backup.Discard]:
        """What restoring dump over the live database would throw away (the backup restored into a scratch copy
        and compared with the live data, read-only)."""
        with scratch.scratch_database(self.target, "rollback_check") as copy:
            backup.restore(dump, copy.dsn, self.pg_restore)
            with self.target.database() as live, postgres.connect(copy.dsn, "scratch database") as restored:
                return backup.discarded(live, restored)

    def code_only_rollback(self, previous_ref: str) -> list[Step]:
        """The previous release's code on the database as it is (the schema stays the release's): only where the
        rollback plan found the previous release reads the new schema (rollbackplan.refuse_code_only)."""
        return [self.stop(), *self.deploy_code(previous_ref), self.start()]

    def rollback(
        self, previous_ref: str, deployed: dict, record: Record | None = None, accept_data_loss: bool = False
    ) -> list[Step]:
        dump = Path(deployed["backup"]["path"]) if deployed.get("backup") else None
        record = record or Record("rollback", "", "", previous_ref)
        live = postgres.database_name(self.target.dsn)

        def refused(reason: str) -> ToolError:
            """A refusal before anything changed: the service the rollback stopped is started again."""
            try:
                self.target.service.start()
                state = wait_healthy(self.target, self.cfg.deploy.health_timeout_s).replace("healthy", "running again")
            except RelcheckError as exc:
                state = f"but the service did not start again: {exc}"
            return ToolError(f"{reason}; nothing was changed, the service is {state}")

        def restore() -> str:
            if dump is None or not dump.is_file():
                raise refused(f"no backup to restore ({dump})")
            if backup.sha256(dump) != deployed["backup"]["sha256"]:
                raise refused(f"backup {dump.name} changed since it was taken (sha256 differs)")
            safety = self.dump_and_prove(f"{live}-before-rollback-{int(time.time())}")
            record.safety_dump = {
                "path": str(safety.path),
                "sha256": safety.sha256,
                "size": safety.size,
                "proven": safety.proven,
            }
            if not safety.proven:
                raise refused(f"the current data could not be kept before the restore: {safety.problem}")
            lost = self.discarded_by_restore(dump)
            record.discarded = [asdict(d) for d in lost]
            if lost and not (accept_data_loss or self.cfg.deploy.accept_data_loss):
                raise refused(
                    f"restoring {dump.name} would discard {describe_discards(lost)} (--accept-data-loss to go on); "
                    f"the current data is kept in {safety.path}"
                )
            owner = postgres.query(
                self.target.admin_dsn, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (live,)
            )[0][0]
            backup.recreate_database(self.target.admin_dsn, live, owner)
            backup.restore(dump, self.target.dsn, self.pg_restore)
            with self.target.database() as conn:
                compared = backup.against_backup(conn, deployed["backup"].get("tables", {}))
            different = [c.table for c in compared if not c.equal]
            record.data_integrity = {"tables compared": len(compared), "equal": bool(compared) and not different}
            record.data_integrity["different"] = different
            if different:
                raise ToolError(f"the restored database differs from the backup in: {', '.join(different)}")
            if not compared:
                raise ToolError("the deploy record keeps no table fingerprints of its backup to compare with")
            return f"{live} recreated and restored from {dump.name}; before it: {safety.path.name}" + (
                f" (discarded {describe_discards(lost)})" if lost else ""
            )

        return [
            self.stop(),
            Step(
                "Restore backup",
                f"keep the current data (pg_dump, proven), compare it with "
                f"{dump}, then recreate {live} and pg_restore "
                f"--single-transaction the backup",
                restore,
            ),
            *self.deploy_code(previous_ref),
            self.start(),
        ]


def requirements_files(install: list[str]) -> list[str]:
    """The files an install command reads with -r/--requirement."""
    named = [install[i + 1] for i, arg in enumerate(install[:-1]) if arg in ("-r", "--requirement")]
    return named + [arg.split("=", 1)[1] for arg in install if arg.startswith("--requirement=")]


def unconfigured_steps(target: Target, kind: str) -> list[str]:
    """The steps of a deploy or rollback the config gives no means to run (a service manager, a database)."""
    found = []
    if target.service.manager == "none":
        found.append(
            "Stop application services: no service manager to stop and start the service "
            "(target.service.manager = 'none')"
        )
    if not target.dsn:
        found.append(f"{'Backup data' if kind == 'deploy' else 'Restore backup'}: no database configured (target.dsn)")
    return found


def plan_problems(cfg: Config, target: Target, repo, kind: str, ref: str) -> list[str]:
    """The steps of a deploy or rollback that cannot run on this target, each naming its step; [] when the plan
    can run. Checked before anything is changed, and by --dry-run."""
    found = unconfigured_steps(target, kind)
    release = "the release" if kind == "deploy" else "the previous release (release.previous_version)"
    if not ref:
        found.append(f"Deploy code: no git ref for {release}")
    elif repo is None or not repo.has_ref(ref):
        found.append(f"Deploy code: {ref} is not in the service's history ({cfg.repository})")
    else:
        for name in requirements_files(cfg.deploy.install):
            try:
                repo.show(ref, name)
            except ToolError:
                found.append(f"Deploy code: {name} (deploy.install) is not in {ref}")
    return found


def describe_discards(lost: list[backup.Discard]) -> str:
    parts = [
        f"{d.table}: {d.rows} rows" + (f" and values of {', '.join(d.columns)}" if d.columns else "") for d in lost
    ]
    return f"{sum(d.rows for d in lost)} rows written since the backup ({'; '.join(parts)})"


def rollback_hint(cfg: Config, record_path: Path) -> str:
    previous = cfg.release.previous_git_ref or "the previous release"
    return f"relcheck rollback --record {record_path}  (restores {previous})"
