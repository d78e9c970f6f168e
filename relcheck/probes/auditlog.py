"""Audit trail evidence: after a known user changes something, the matching audit record must exist."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from psycopg import sql

from relcheck.target import logs
from relcheck.target.http import Answer
from relcheck.target.request_specs import base_values, run_setup, send
from relcheck.target.target import Target


@dataclass
class AuditRecord:
    actor: str
    action: str
    object: str
    time: datetime | None


def from_table(conn, table: str, columns: dict[str, str], object_id: str, limit: int = 50) -> list[AuditRecord]:
    query = sql.SQL(
        "SELECT {actor}::text, {action}::text, {object}::text, {time} FROM {table} "
        "WHERE {object}::text = %s ORDER BY {time} DESC LIMIT {limit}"
    ).format(
        actor=sql.Identifier(columns["actor"]),
        action=sql.Identifier(columns["action"]),
        object=sql.Identifier(columns["object"]),
        time=sql.Identifier(columns["time"]),
        table=sql.Identifier(*table.split(".")),
        limit=sql.Literal(limit),
    )
    return [AuditRecord(*row) for row in conn.execute(query, (str(object_id),)).fetchall()]


def from_log(lines: list[str], pattern: str, object_id: str, stamps: logs.Stamps) -> list[AuditRecord]:
    """Audit lines matched by a regex with named groups actor, action, object and optionally time (ISO 8601; naive
    in the log's zone, target.service.log_timezone)."""
    regex = re.compile(pattern)
    records = []
    for line in lines:
        match = regex.search(line)
        if match and match.group("object") == str(object_id):
            when = match.groupdict().get("time")
            records.append(
                AuditRecord(
                    match.group("actor"),
                    match.group("action"),
                    match.group("object"),
                    stamps.aware(datetime.fromisoformat(when)) if when else None,
                )
            )
    return records


def matching(
    records: list[AuditRecord], actor: str, action: str, started: datetime, window_s: float, skew_s: float = 5.0
) -> list[AuditRecord]:
    """Records by that actor with that action, stamped within the window after the change started."""
    earliest, latest = started - timedelta(seconds=skew_s), started + timedelta(seconds=window_s)
    return [
        r
        for r in records
        if r.actor == actor and r.action == action and (r.time is None or earliest <= _aware(r.time) <= latest)
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class Trial:
    """A known user's audited action and the audit records of the object it changed."""

    answer: Answer
    object_id: str | None
    records: list[AuditRecord]
    found: list[AuditRecord]


def trial(target: Target, cfg) -> Trial:
    """Run the setup and the audited action of security.audit_trail (cfg), then read the trail (table or log)."""
    values = run_setup(target, cfg.setup, base_values())
    log_position = target.log.position() if cfg.source == "log" else None
    with target.database() as conn:
        started = conn.execute("SELECT now()").fetchone()[0] if cfg.source == "table" else datetime.now(timezone.utc)
    answer = send(target, cfg.action, values)
    object_id = (answer.json or {}).get(cfg.object_field) if answer.ok and isinstance(answer.json, dict) else None
    if object_id is None:
        return Trial(answer, None, [], [])
    if cfg.source == "table":
        with target.database() as conn:
            records = from_table(conn, cfg.table, cfg.columns, object_id)
    else:
        stamps = logs.Stamps(target.config.target.service)
        records = from_log(target.log.lines_after(log_position), cfg.log_pattern, object_id, stamps)
    return Trial(answer, object_id, records, matching(records, cfg.actor, cfg.expect_action, started, cfg.window_s))
