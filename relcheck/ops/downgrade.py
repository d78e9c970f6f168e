"""The down-migration rehearsed on a scratch copy of the live database: restore the backup there, upgrade to the
release's schema head, downgrade to the previous release's, upgrade again. After every step the scratch copy must
be at the step's schema version and the live database's schema exactly as before (a downgrade followed by an upgrade
ends where it began, so only a look after each step sees a step that ran on the live database)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from relcheck.core.errors import RelcheckError
from relcheck.core.templates import fill
from relcheck.ops.deploy import Host, Procedures
from relcheck.probes import backup, migrations
from relcheck.target import capture, dbstate, postgres
from relcheck.target.environment import refuse_live
from relcheck.target.scratch import DsnParts, scratch_database


@dataclass
class DowngradeRehearsal:
    previous_head: str = ""
    release_head: str = ""
    steps: list[tuple[str, str, str]] = field(default_factory=list)  # (step, outcome, what was checked)
    rows: list[tuple[str, int, int | None]] = field(default_factory=list)  # table, rows before, after downgrade
    destroyed: list[tuple[str, str, int]] = field(default_factory=list)  # (table|column, name, values lost)
    upgrade: migrations.Upgrade | None = None  # the measured upgrade: every statement captured with its locks
    error: str = ""


class RehearsalFailed(RelcheckError):
    pass


def rehearse(
    cfg, target, verified_backup: backup.Proof, pg_tools: dict, previous_head: str, release_head: str
) -> DowngradeRehearsal:
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
                before, counts = after, {}  # each step starts where the last one left the copy
                if name.startswith("downgrade"):
                    with postgres.connect(copy.dsn, "scratch database") as conn:
                        counts = dbstate.non_null_counts(conn, before.columns)
                # the upgrade as it will run on the live database, measured: the first, unless the copy was at the
                # release's schema already (then the one after the downgrade)
                if name.startswith("upgrade") and (rehearsal.upgrade is None or not upgrade_changed):
                    outcome = measured_upgrade(rehearsal, procedures.host, command, name, copy.dsn, cfg.deploy.env)
                else:
                    outcome = procedures.host.run(command, name)
                with postgres.connect(copy.dsn, "scratch database") as conn:
                    after = dbstate.schema(conn, query)
                    fingerprints = backup.fingerprints(conn) if counts else {}
                upgrade_changed = bool(before.differences(after)) if name.startswith("upgrade") else upgrade_changed
                proof = checked(live, after)  # the live database first: the graver finding
                reached(name, before, after, expected, query, change_due=previous_head != release_head)
                rehearsal.steps.append((f"{name}: {' '.join(command[1:])}", outcome, proof))
                if counts:
                    rehearsal.destroyed = dbstate.destroyed(before, after, counts)
                    rehearsal.rows = [
                        (t, f.rows, fingerprints[t].rows if t in fingerprints else None)
                        for t, f in verified_backup.source.items()
                    ]
    except (RelcheckError, psycopg.Error) as exc:
        rehearsal.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return rehearsal


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
