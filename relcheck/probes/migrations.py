"""What a release's migration costs the running service, judged from the upgrade rehearsed on a scratch copy of the
live database (every statement captured with its locks, see relcheck.target.capture) and from squawk's lint of those
statements.

The predicted blocking time is the longest time a relation that existed before the migration (one the running
service can use) was locked against reads (ACCESS EXCLUSIVE) or writes (SHARE and stronger): from the start of the
statement that took the lock to the end of its transaction. Over `deploy.max_blocking_s` it is a failure, naming the
statement, squawk's rules on it and a safer form. A squawk finding alone is evidence, not a finding: on the tables
production has, the measurement says what the lock it warns of costs.

    cost = judge(upgrade, rows, max_blocking_s=5)
    cost.predicted_blocking_s, cost.problem
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from relcheck.core.errors import RelcheckError, ToolError
from relcheck.target import commands
from relcheck.target.capture import Statement

BLOCKS_READS = {"AccessExclusiveLock"}
BLOCKS_WRITES = BLOCKS_READS | {"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock"}
RELATIONS = """SELECT c.oid, n.nspname || '.' || c.relname, c.relfilenode, pg_total_relation_size(c.oid)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p', 'm', 'v', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                 AND n.nspname NOT LIKE 'pg_toast%'"""
NOT_LINTED = re.compile(r"(?is)^\s*(SELECT|SHOW)\b")  # the tool's own queries
NOT_LISTED = re.compile(r"(?is)^\s*(SELECT|SHOW|SAVEPOINT|RELEASE)\b")  # ... and its driver's savepoints
SAFER = [  # (what the statement does, the safer form): strong_migrations' and squawk's advice
    (re.compile(pattern, re.IGNORECASE | re.DOTALL), advice)
    for pattern, advice in {
        r"^\s*(UPDATE|INSERT|DELETE)\b": "backfill in batches, each in its own transaction, outside the one that "
        "alters the table",
        r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)": "CREATE INDEX CONCURRENTLY, outside a transaction",
        r"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b": "add a new column, backfill it in batches, switch the "
        "code to it, then drop the old column",
        r"\bSET\s+NOT\s+NULL\b": "ADD CONSTRAINT … CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT in its "
        "own transaction, then SET NOT NULL (no scan)",
        r"\bADD\s+(CONSTRAINT\s+\S+\s+)?(FOREIGN\s+KEY|CHECK)\b(?!.*\bNOT\s+VALID\b)": "ADD CONSTRAINT … NOT VALID, "
        "then VALIDATE CONSTRAINT in its own transaction",
        # a function call (other than now(), evaluated once) as the default: PostgreSQL rewrites the table
        r"\bADD\s+(COLUMN\s+)?\S+\s.*\bDEFAULT\s+\(?\s*(?!now\s*\()[a-z_][\w.]*\s*\(": "a volatile default "
        "rewrites the table: add the column without it, then backfill in batches",
        # a constant (or now()) as the default (PostgreSQL 11+) is a catalog change only, NOT NULL included
        r"\bADD\s+(COLUMN\s+)?\S+\s.*\bDEFAULT\b": "a non-volatile default does not rewrite the table (PostgreSQL "
        "11+); keep the altering transaction short and set lock_timeout so the lock does not queue behind long queries",
        r"\bADD\s+(COLUMN\s+)?\S+\s.*\bNOT\s+NULL\b": "add the column nullable, backfill in batches, then a NOT "
        "VALID check and VALIDATE",
    }.items()
]
OTHERWISE = "split the change so no transaction holds the lock while it scans or rewrites the table; set lock_timeout"


@dataclass
class Relation:
    oid: int
    name: str
    filenode: int
    bytes: int


def relations(conn) -> dict[int, Relation]:
    """The tables (and materialized views) of a database by oid, with their file node and total size."""
    return {oid: Relation(oid, name, node, size) for oid, name, node, size in conn.execute(RELATIONS).fetchall()}


@dataclass
class Upgrade:
    """The upgrade as rehearsed: its statements and the database's relations before and after it."""

    statements: list[Statement] = field(default_factory=list)
    before: dict[int, Relation] = field(default_factory=dict)
    after: dict[int, Relation] = field(default_factory=dict)
    seconds: float = 0.0  # the whole migration command
    server_version: str = ""  # SHOW server_version of the copy
    error: str = ""  # the capture is incomplete: why


@dataclass
class Blocking:
    relation: str
    blocks: str  # "reads and writes" | "writes"
    mode: str  # the strongest of the transaction's locks on it
    seconds: float
    statement: str  # the statement that took the lock
    slowest: str  # the longest statement while it was held (often the one to change)
    slowest_s: float
    safer: str


@dataclass
class Finding:
    rule: str
    message: str
    statement: str


@dataclass
class MigrationCost:
    statements: list[tuple[str, float, str, str]] = field(default_factory=list)  # sql, seconds, locks, rewrote
    queries: int = 0  # every statement sent, the tool's own queries included
    tables: list[tuple[str, int | None, int]] = field(default_factory=list)  # name, rows, bytes
    blocking: list[Blocking] = field(default_factory=list)  # longest first
    findings: list[Finding] = field(default_factory=list)
    max_blocking_s: float = 5.0
    seconds: float = 0.0  # the whole migration command
    unverified: str = ""  # what could not be measured or linted, and what would fix it

    @property
    def predicted_blocking_s(self) -> float:
        return self.blocking[0].seconds if self.blocking else 0.0

    @property
    def over(self) -> list[Blocking]:
        return [b for b in self.blocking if b.seconds > self.max_blocking_s]

    @property
    def problem(self) -> str:
        """A lock longer than allowed: each statement, how long it blocked what, and the safer form."""
        if not self.over:
            return ""
        rules: dict[str, list[str]] = {}
        for f in self.findings:
            rules.setdefault(f.statement, []).append(f.rule)
        return "; ".join(
            f"{b.relation} locked against {b.blocks} for {b.seconds:.1f} s (> deploy.max_blocking_s = "
            f"{self.max_blocking_s:g}) from {b.statement[:100]}"
            + (f", while {b.slowest[:100]} ran {b.slowest_s:.1f} s" if b.slowest != b.statement else "")
            + (
                f" [squawk: {', '.join(found)}]"
                if (found := sorted(set(rules.get(b.statement, []) + rules.get(b.slowest, []))))
                else ""
            )
            + f"; safer: {b.safer}"
            for b in self.over
        )

    def measured(self, sql: str) -> str:
        """What the measurement found of a statement's locks against the service (for a squawk finding on it)."""
        held = [b for b in self.blocking if sql in (b.statement, b.slowest)]
        return "; ".join(f"{b.relation}: {b.blocks} {b.seconds:g} s" for b in held) or "no lock against the service"


def safer_form(statements: list[str], table: str) -> str:
    """The advice for the first statement (the slowest first) on the table that has one."""
    on_table = re.compile(rf'(?i)(\b|")({re.escape(table)})(\b|")')
    return next(
        (advice for sql in statements if on_table.search(sql) for pattern, advice in SAFER if pattern.search(sql)),
        OTHERWISE,
    )


def blocking(upgrade: Upgrade) -> list[Blocking]:
    """Each lock against reads or writes on a relation that existed before: from the start of the statement that
    took it to the end of its transaction (of the statement itself, outside a transaction); longest first."""
    found: list[Blocking] = []
    sessions: dict[int, list[Statement]] = {}
    for statement in upgrade.statements:
        sessions.setdefault(statement.pid, []).append(statement)
    for statements in sessions.values():
        held: dict[tuple[int, str], tuple[Statement, str]] = {}  # (oid, what it blocks) -> taken by, mode
        transaction: list[Statement] = []
        for statement in statements:
            transaction.append(statement)
            for oid, modes in statement.locks.items():
                if oid not in upgrade.before:
                    continue  # a relation the migration created: nothing uses it yet
                for blocks, conflicting in (("reads and writes", BLOCKS_READS), ("writes", BLOCKS_WRITES)):
                    if modes & conflicting:
                        held.setdefault((oid, blocks), (statement, max(modes & conflicting)))
            # the transaction is over (or the session ended in it): its locks are released
            if not statement.in_transaction or statement is statements[-1]:
                for (oid, blocks), (taken_by, mode) in held.items():
                    if blocks == "writes" and held.get((oid, "reads and writes"), (None,))[0] is taken_by:
                        continue  # blocked reads as long: reported once, as the graver
                    during = transaction[transaction.index(taken_by) :]
                    slowest = max(during, key=lambda s: s.seconds)
                    found.append(
                        Blocking(
                            upgrade.before[oid].name,
                            blocks,
                            mode,
                            round(statement.ended - taken_by.started, 4),
                            taken_by.sql,
                            slowest.sql,
                            round(slowest.seconds, 4),
                            safer_form(
                                [s.sql for s in sorted(during, key=lambda s: -s.seconds)],
                                upgrade.before[oid].name.split(".")[-1],
                            ),
                        )
                    )
                held, transaction = {}, []
    return sorted(found, key=lambda b: (-b.seconds, b.relation))


def judge(
    upgrade: Upgrade, rows: dict[str, int], max_blocking_s: float, findings: list[Finding] | None = None
) -> MigrationCost:
    """The cost of the rehearsed upgrade; rows: the tables' row counts (the backup's proof counted them)."""
    names = {r.oid: r.name for r in upgrade.before.values()}
    rewritten = {
        oid for oid, r in upgrade.before.items() if oid in upgrade.after and upgrade.after[oid].filenode != r.filenode
    }
    rewrote_by: dict[int, Statement] = {}  # the longest statement under ACCESS EXCLUSIVE on it: the rewrite
    for statement in upgrade.statements:
        for oid, modes in statement.locks.items():
            if (
                oid in rewritten
                and modes & BLOCKS_READS
                and statement.seconds >= rewrote_by.get(oid, statement).seconds
            ):
                rewrote_by[oid] = statement
    return MigrationCost(
        statements=[
            (
                s.sql,
                round(s.seconds, 4),
                ", ".join(
                    f"{names[oid]} {'/'.join(sorted(modes))}" for oid, modes in sorted(s.locks.items()) if oid in names
                ),
                ", ".join(sorted(names[oid] for oid, by in rewrote_by.items() if by is s)),
            )
            for s in upgrade.statements
            if not NOT_LISTED.match(s.sql)
        ],
        tables=[(r.name, rows.get(r.name), r.bytes) for r in sorted(upgrade.before.values(), key=lambda r: r.name)],
        blocking=blocking(upgrade),
        findings=findings or [],
        max_blocking_s=max_blocking_s,
        seconds=round(upgrade.seconds, 2),
        queries=len(upgrade.statements),
    )


def squawk_binary() -> str:
    """squawk beside relcheck's interpreter (squawk-cli is a dependency), else on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.is_file() else shutil.which("squawk")
    if not found:
        raise ToolError("squawk not found: pip install 'squawk-cli>=2.70,<3' (a relcheck dependency)")
    return found


def lint(statements: list[Statement], pg_version: str, squawk: str | None = None) -> list[Finding]:
    """squawk over the statements as the migration sent them (its BEGIN/COMMIT included: squawk sees whether each
    runs in a transaction), for the server's PostgreSQL version (e.g. "16.4")."""
    linted = [s.sql for s in statements if s.sql and not NOT_LINTED.match(s.sql)]
    if not linted:
        return []
    first_lines, text = [], ""
    for sql in linted:
        first_lines.append(text.count("\n"))
        text += sql.rstrip().rstrip(";") + "\n;\n"  # on its own line: a statement ending in a -- comment
    with tempfile.TemporaryDirectory(prefix="relcheck-squawk-") as tmp:
        path = Path(tmp) / "migration.sql"
        path.write_text(text)
        command = [squawk or squawk_binary(), "--reporter", "json", "--pg-version", pg_version, str(path)]
        result = commands.run(command, timeout=120)
    if result.returncode not in (0, 1):  # 1: it found something
        raise ToolError(result.failure("squawk"))
    try:
        reported = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        raise ToolError(f"squawk printed no JSON report: {result.stdout.strip()[:200]}") from None
    unread = [item for item in reported if item.get("rule_name") == "syntax-error"]
    if unread:  # squawk stops reading at a syntax error: what follows it is not linted
        raise ToolError(f"squawk could not parse the migration's SQL: {unread[0].get('message', '')}")
    findings = []
    for item in reported:
        index = max((i for i, first in enumerate(first_lines) if first <= int(item.get("line", 0))), default=0)
        findings.append(Finding(str(item.get("rule_name", "?")), str(item.get("message", "")), linted[index]))
    return findings


def pg_version(server_version: str) -> str:
    """squawk's --pg-version from SHOW server_version ("16.4 (Debian 16.4-1)" -> "16.4")."""
    match = re.match(r"(\d+)(\.\d+)?", server_version.strip())
    if not match:
        raise RelcheckError(f"cannot read the PostgreSQL version from {server_version!r}")
    return match.group(1) + (match.group(2) or ".0")
