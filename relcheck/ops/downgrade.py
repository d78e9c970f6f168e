"""The down-migration rehearsed on a scratch copy of the live database: restore the backup there, upgrade to the
release's schema head, downgrade to the previous release's, upgrade again. After every step the scratch copy must
be at the step's schema version and the live database's schema exactly as before (a downgrade followed by an upgrade
ends where it began, so only a look after each step sees a step that ran on the live database).

Between the steps the previous release's code is started on the copy and walks the critical paths: on the upgraded
copy (the code-only rollback) and on the downgraded one (the full rollback); relcheck.probes.rollbackplan judges which
rollback works from them and from the data the downgrade destroys."""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from relcheck.core.errors import RelcheckError
from relcheck.core.templates import fill
from relcheck.core.versions import same_version
from relcheck.ops.deploy import Host, Procedures
from relcheck.probes import backup, liveness, migrations
from relcheck.target import capture, dbstate, postgres
from relcheck.target.embedded import EmbeddedRuntime
from relcheck.target.environment import command_env, refuse_live
from relcheck.target.request_specs import Walked, walk, write_repeatedly
from relcheck.target.scratch import DsnParts, scratch_database
from relcheck.target.service import ProcessService, free_port
from relcheck.target.target import Target, TargetDown


@dataclass
class PreviousRun:
    """The previous release's code started on the scratch copy: whether it came up healthy, its critical paths."""

    stage: str  # "code-only" (on the upgraded copy) | "full" (after the downgrade)
    started: bool = False
    health: str = ""  # why it did not answer healthy ("" when it did)
    walked: list[Walked] = field(default_factory=list)  # post_deploy.critical_paths, in order
    schema_errors: list[str] = field(default_factory=list)  # PostgreSQL's "does not exist" errors in its output
    unverified: str = ""  # it could not be started at all: what to configure
    seconds: float = 0.0  # from its start to its stop

    @property
    def summary(self) -> str:
        if self.unverified:
            return f"{'started, not judged' if self.started else 'not run'}: {self.unverified}"
        took = f" ({self.seconds:.1f} s)"
        if self.health:
            return f"not healthy: {self.health}{took}"
        return f"healthy; {sum(w.ok for w in self.walked)} of {len(self.walked)} critical paths as expected{took}"


@dataclass
class DowngradeRehearsal:
    previous_head: str = ""
    release_head: str = ""
    steps: list[tuple[str, str, str]] = field(default_factory=list)  # (step, outcome, what was checked)
    rows: list[tuple[str, int, int | None]] = field(default_factory=list)  # table, rows before, after downgrade
    destroyed: list[tuple[str, str, int]] = field(default_factory=list)  # (table|column, name, values lost)
    data_lost: list[tuple[str, str, int]] = field(default_factory=list)  # ... not counting a constant default's
    previous: list[PreviousRun] = field(default_factory=list)  # the previous release's code on the copy
    upgrade: migrations.Upgrade | None = None  # the measured upgrade: every statement captured with its locks
    error: str = ""


class RehearsalFailed(RelcheckError):
    pass


def rehearse(
    cfg,
    target,
    verified_backup: backup.Proof,
    pg_tools: dict,
    previous_head: str,
    release_head: str,
    previous_tree: Path | None = None,
) -> DowngradeRehearsal:
    """previous_tree: the previous release's code, started on the copy after the upgrade and after the downgrade."""
    rehearsal = DowngradeRehearsal(previous_head, release_head)
    query = cfg.deploy.schema_version_query
    live = dbstate.LiveWatch(target, query)
    try:
        with scratch_database(target, "rollback_rehearsal") as copy:
            env = {k: fill(v, copy.parts.placeholders("dsn"), "deploy.env") for k, v in cfg.deploy.env.items()}
            procedures = Procedures(
                cfg,
                target,
                Host(cfg.in_app(cfg.source), [], env),
                pg_tools["pg_dump"],
                pg_tools["pg_restore"],
                Path(verified_backup.path).parent,
            )
            plan = [
                ("upgrade to the release head", cfg.deploy.migrate, release_head),
                (f"downgrade to {previous_head}", cfg.deploy.downgrade, previous_head),
                ("upgrade again", cfg.deploy.migrate, release_head),
            ]
            commands = [procedures.command(template, previous_head=previous_head) for _, template, _ in plan]
            refuse_live(env, [arg for command in commands for arg in command], DsnParts.of(target.dsn), "deploy")
            backup.restore(verified_backup.path, copy.dsn, pg_tools["pg_restore"])
            with postgres.connect(copy.dsn, "scratch database") as conn:
                after = dbstate.schema(conn, query)
            rehearsal.steps.append(("restore the backup into " + copy.name, "ok", checked(live, after)))
            upgrade_changed = False
            for (name, _, expected), command in zip(plan, commands, strict=True):
                before, counts, defaults, digests = after, {}, {}, {}  # each step starts where the last one left it
                if name.startswith("downgrade"):
                    rehearsal.steps.append(release_writes(cfg, target, copy.dsn))
                    with postgres.connect(copy.dsn, "scratch database") as conn:
                        counts = dbstate.non_null_counts(conn, before.columns)
                        defaults = dbstate.constant_default_counts(conn)
                        digests = dbstate.value_digests(conn, {t: list(c) for t, c in before.columns.items()})
                # the upgrade as it will run on the live database, measured: the first, unless the copy was at the
                # release's schema already (then the one after the downgrade)
                if name.startswith("upgrade") and (rehearsal.upgrade is None or not upgrade_changed):
                    outcome = measured_upgrade(rehearsal, procedures.host, command, name, copy.dsn, cfg.deploy.env)
                else:
                    outcome = procedures.host.run(command, name)
                with postgres.connect(copy.dsn, "scratch database") as conn:
                    after = dbstate.schema(conn, query)
                    fingerprints = backup.fingerprints(conn) if counts else {}
                    new_columns = {
                        t: [c for c in cs if c not in before.columns.get(t, {})] for t, cs in after.columns.items()
                    }
                    kept = dbstate.moved(digests, dbstate.value_digests(conn, new_columns)) if counts else set()
                upgrade_changed = bool(before.differences(after)) if name.startswith("upgrade") else upgrade_changed
                proof = checked(live, after)  # the live database first: the graver finding
                reached(name, before, after, expected, query, change_due=previous_head != release_head)
                rehearsal.steps.append((f"{name}: {' '.join(command[1:])}", outcome, proof))
                if counts:  # the rows just before the downgrade: the backup's, the previous code's (code-only
                    # run) and the release's own writes — not rows the downgrade lost
                    # a column whose values reappear under another name (a rename back) lost nothing
                    rehearsal.destroyed = [d for d in dbstate.destroyed(before, after, counts) if d[1] not in kept]
                    rehearsal.data_lost = dbstate.data_lost(rehearsal.destroyed, defaults)
                    rehearsal.rows = [
                        (t, c["*"], fingerprints[t].rows if t in fingerprints else None)
                        for t, c in sorted(counts.items())
                    ]
                if not name.startswith("upgrade again"):
                    stage = "full" if name.startswith("downgrade") else "code-only"
                    previous = run_previous(cfg, target, previous_tree, copy.dsn, stage)
                    rehearsal.previous.append(previous)
                    rehearsal.steps.append(
                        (f"the previous release's code on the copy ({stage})", previous.summary, checked(live, after))
                    )
    except (RelcheckError, psycopg.Error) as exc:
        rehearsal.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return rehearsal


def release_writes(cfg, target, dsn: str) -> tuple[str, str, str]:
    """Data the new release writes, before its down-migration is rehearsed: the release started on the scratch copy
    (at its schema head now), deploy.release_seed (else rehearsal_seed) sent rehearsal_rows times through its API,
    stopped. A row of it the down-migration deletes is lost on rollback. Only relcheck's own (embedded) runtime can
    start the release; elsewhere the step says so and the copy holds the backup's data alone."""
    spec = cfg.deploy.release_seed or cfg.deploy.rehearsal_seed
    name = "the release writes on the scratch copy"
    if spec is None:
        return name, "not rehearsed", "no write request configured (deploy.release_seed / rehearsal_seed)"
    if getattr(target, "runtime", None) is None:
        return name, "not rehearsed", "relcheck starts the release only on its embedded target"
    writer = target.runtime.spawn({}, dsn=dsn, tokens=target.http.tokens)
    try:
        wrote = write_repeatedly(writer, spec, cfg.deploy.rehearsal_rows)
    finally:
        writer.service.stop()
    return name, "ok", f"{wrote} through the release's API, then stopped"


def measured_upgrade(
    rehearsal: DowngradeRehearsal, host: Host, command: list[str], name: str, dsn: str, env: dict[str, str]
) -> str:
    """The upgrade through the statement capture (deploy.env's placeholders name the capture's address)."""
    rehearsal.upgrade = upgrade = migrations.Upgrade()
    with postgres.connect(dsn, "scratch database") as conn:
        upgrade.before = migrations.relations(conn)
        upgrade.server_version = conn.execute("SHOW server_version").fetchone()[0]
    plain_env = host.env
    with capture.proxy(dsn) as (through, recorder):
        host.env = {k: fill(v, DsnParts.of(through).placeholders("dsn"), "deploy.env") for k, v in env.items()}
        started = time.monotonic()
        try:
            outcome = host.run(command, name)
        finally:
            host.env, upgrade.seconds = plain_env, time.monotonic() - started
    upgrade.statements = recorder.statements
    upgrade.error = f"statement capture: {recorder.errors[0]}" if recorder.errors else ""
    with postgres.connect(dsn, "scratch database") as conn:
        upgrade.after = migrations.relations(conn)
    return outcome


def checked(live: dbstate.LiveWatch, scratch: dbstate.Schema) -> str:
    """After a step: the live schema must be unchanged; what the scratch copy is at."""
    changes = live.changes()
    if changes:
        raise RehearsalFailed(f"the live database changed during the rehearsal ({'; '.join(changes)})")
    return f"scratch copy at {dbstate.describe_version(scratch.version)}; live schema unchanged"


def reached(
    step: str, before: dbstate.Schema, after: dbstate.Schema, expected: str, query: str, change_due: bool
) -> None:
    """The step moved the scratch copy to the expected schema version (or, without a version query, changed it
    when a change was due)."""
    if query:
        if after.version != (expected,):
            raise RehearsalFailed(
                f"{step} left the scratch copy at schema version "
                f"{dbstate.describe_version(after.version)}, not {expected}"
            )
    elif step.startswith("downgrade") and change_due and not before.differences(after):
        raise RehearsalFailed(f"{step} changed nothing on the scratch copy")


def previous_command(cfg) -> tuple[list[str], dict[str, str], str]:
    """How the previous release's code is started (deploy.previous_start/previous_env, else on the embedded target
    its recipe's start and env) and with which interpreter; RelcheckError naming the key when neither is there."""
    deploy, recipe = cfg.deploy, cfg.embedded
    if deploy.previous_start:
        chosen = deploy.previous_start, deploy.previous_env, cfg.python(deploy.python)
    elif cfg.target.mode == "embedded" and recipe is not None and recipe.start:
        chosen = recipe.start, {**recipe.env, **deploy.previous_env}, cfg.python(deploy.python or recipe.python)
    else:
        raise RelcheckError(
            "deploy.previous_start is not configured: how to start the previous release's code on the scratch copy"
        )
    if not any("{dsn" in part for part in [*chosen[0], *chosen[1].values()]):  # it would use its own database
        raise RelcheckError(
            "deploy.previous_start / deploy.previous_env hand the previous release's code no {dsn} (or {dsn_host} "
            "...): it would reach whatever database it is configured for, not the scratch copy"
        )
    return chosen


def run_previous(cfg, target, tree: Path | None, dsn: str, stage: str) -> PreviousRun:
    """The previous release's code started on the scratch database dsn, its health and critical paths walked (with
    the live target's tokens: the copy holds its users), then stopped. It never sees the live database's DSN."""
    run = PreviousRun(stage)
    if tree is None or not tree.is_dir():
        previous = cfg.release.previous_git_ref
        run.unverified = f"no tree of the previous release (release.previous_ref {previous} in target.repository)"
        return run
    try:
        template, env_template, python = previous_command(cfg)
        with tempfile.TemporaryDirectory(prefix="relcheck-previous-run-") as scratch:
            port, log_file = free_port(), Path(scratch) / "service.log"
            values = {
                "python": python,
                "host": "127.0.0.1",
                "port": port,
                "log_file": str(log_file),
                "faults": "{}",
                **DsnParts.of(dsn).placeholders("dsn"),
            }
            command = [fill(a, values, "deploy.previous_start") for a in template]
            env = {k: fill(v, values, f"deploy.previous_env.{k}") for k, v in env_template.items()}
            refuse_live(env, command, DsnParts.of(target.dsn), "deploy.previous_start")
            service = ProcessService(command, command_env(env), cfg.in_app(tree), Path(scratch) / "service.out")
            url = f"http://127.0.0.1:{port}"
            previous = Target(cfg, url, dsn, "", target.http.tokens, service, log_file, "process")
            service.start()
            run.started, started = True, time.monotonic()
            try:
                run.health = healthy_or_why(cfg, previous)
                run.unverified = not_the_previous(cfg, previous, healthy=not run.health)
                if not run.health and not run.unverified:
                    run.walked = walk(previous, cfg.post_deploy.critical_paths)
            finally:
                service.stop()
                run.seconds = time.monotonic() - started
                run.schema_errors = schema_errors(service.output, log_file)
    except RelcheckError as exc:
        run.unverified = str(exc).strip().splitlines()[0]
    return run


def not_the_previous(cfg, started: Target, healthy: bool) -> str:
    """Why the code deploy.previous_start started is not shown to be release.previous_version ("" when it reports
    that version): a start that runs the release's own installed code (an interpreter or virtualenv of the release)
    would prove the release reads its own schema, not the previous release. Code that did not answer healthy and
    reports no version is judged by its health."""
    wanted, state = cfg.release.previous_version, liveness.service_state(started)
    if state.version is None:
        if not healthy:
            return ""
        why = "release.previous_version is not set" if not wanted else f"its version not read: {state.version_problem}"
        return f"could not tell that deploy.previous_start started the previous release ({why})"
    if wanted and same_version(state.version, wanted):
        return ""
    return (
        f"the code deploy.previous_start started reports version {state.version} ({state.source}), not "
        f"release.previous_version {wanted or '(not set)'}: it is not the previous release's code"
    )


def healthy_or_why(cfg, previous: Target) -> str:
    """ "" once the started code answers healthy, waited for up to deploy.previous_startup_s from its start (a
    release slower to become healthy is not read as failing); else why not: it exited, never answered, or its last
    answer within the limit (a 503 it keeps, e.g. its health refusing a schema it does not know, with its text)."""
    try:
        EmbeddedRuntime.wait_healthy(previous, cfg.deploy.previous_startup_s)
    except TargetDown as exc:
        answer = exc.answer
        text = f": {answer.text.strip()[:200]}" if answer.status is not None and answer.text.strip() else ""
        return f"{str(exc).strip().splitlines()[0]}{text}"
    except RelcheckError as exc:
        return str(exc).strip().splitlines()[0]
    return ""


MISSING = re.compile(r'(?:column|relation) "[^"]+"(?: of relation "[^"]+")? does not exist')


def schema_errors(*files: Path) -> list[str]:
    """PostgreSQL's errors about a column or relation that does not exist, as the service printed or logged them."""
    found: list[str] = []
    for path in files:
        text = path.read_text(errors="replace") if path.is_file() else ""
        found += [m for m in dict.fromkeys(MISSING.findall(text)) if m not in found]
    return found
