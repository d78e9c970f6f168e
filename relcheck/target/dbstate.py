"""What a database looks like, read-only: its schema version, tables and columns, and its write counters. Taken
before and after each step relcheck runs, it proves where the step wrote: the scratch copy shows the step's effect
and the live database's schema did not move.

    before = snapshot(conn, "SELECT version_num FROM alembic_version")
    ...
    assert not before.differences(snapshot(conn, ...))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from relcheck.target.target import postgres

COLUMNS = """SELECT table_schema || '.' || table_name, column_name, data_type
             FROM information_schema.columns
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg\\_%'
             ORDER BY 1, ordinal_position"""
WRITES = """SELECT coalesce(tup_inserted, 0), coalesce(tup_updated, 0), coalesce(tup_deleted, 0),
                   coalesce(xact_commit, 0) + coalesce(xact_rollback, 0)
            FROM pg_stat_database WHERE datname = %s"""


@dataclass(frozen=True)
class Schema:
    version: tuple[str, ...]  # rows of the schema-version query; () without one
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> column -> type

    @property
    def tables(self) -> list[str]:
        return sorted(self.columns)

    def differences(self, after: "Schema") -> list[str]:
        """What changed from self to after, one phrase each: "column item.created_at dropped"."""
        found = []
        if self.version != after.version:
            found.append(f"schema version {describe_version(self.version)} -> {describe_version(after.version)}")
        for table in sorted(set(self.columns) - set(after.columns)):
            found.append(f"table {table} dropped")
        for table in sorted(set(after.columns) - set(self.columns)):
            found.append(f"table {table} created")
        for table in sorted(set(self.columns) & set(after.columns)):
            old, new = self.columns[table], after.columns[table]
            found += [f"column {short(table)}.{c} dropped" for c in old if c not in new]
            found += [f"column {short(table)}.{c} added" for c in new if c not in old]
            found += [
                f"column {short(table)}.{c} type {old[c]} -> {new[c]}" for c in old if c in new and old[c] != new[c]
            ]
        return found


def short(table: str) -> str:
    return table.removeprefix("public.")


def describe_version(version: tuple[str, ...]) -> str:
    return ",".join(version) if version else "(none)"


def schema(conn, version_query: str) -> Schema:
    columns: dict[str, dict[str, str]] = {}
    for table, column, data_type in conn.execute(COLUMNS).fetchall():
        columns.setdefault(table, {})[column] = data_type
    return Schema(schema_version(conn, version_query), columns)


def schema_version(conn, version_query: str) -> tuple[str, ...]:
    """The rows of the configured version query (alembic's version table by default); () when there is none."""
    if not version_query:
        return ()
    try:
        with conn.transaction():
            return tuple(sorted(str(row[0]) for row in conn.execute(version_query).fetchall()))
    except psycopg.errors.UndefinedTable:
        return ()


@dataclass(frozen=True)
class Writes:
    """A database's cumulative write counters (pg_stat_database), read from another database's session."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    transactions: int = 0

    def since(self, before: "Writes") -> "Writes":
        return Writes(
            self.inserted - before.inserted,
            self.updated - before.updated,
            self.deleted - before.deleted,
            self.transactions - before.transactions,
        )

    def describe(self) -> str:
        return (
            f"{self.inserted} rows inserted, {self.updated} updated, {self.deleted} deleted "
            f"in {self.transactions} transactions"
        )


def writes(admin_conn, database: str) -> Writes:
    admin_conn.execute("SELECT pg_stat_clear_snapshot()")
    row = admin_conn.execute(WRITES, (database,)).fetchone()
    return Writes(*row) if row else Writes()


def non_null_counts(conn, tables: dict[str, dict[str, str]]) -> dict[str, dict[str, int]]:
    """table -> {"*": rows, column: non-null values}, one scan per table (for what a downgrade would destroy)."""
    counts = {}
    for table, columns in tables.items():
        schema_name, table_name = table.split(".", 1)
        query = (
            sql.SQL("SELECT count(*), {} FROM {}").format(
                sql.SQL(", ").join(sql.SQL("count({})").format(sql.Identifier(c)) for c in columns),
                sql.Identifier(schema_name, table_name),
            )
            if columns
            else sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema_name, table_name))
        )
        row = conn.execute(query).fetchone()
        counts[table] = {"*": row[0], **dict(zip(columns, row[1:], strict=True))}
    return counts


def value_digests(conn, tables: dict[str, list[str]]) -> dict[str, dict[str, tuple[int, int]]]:
    """table -> {column: (non-null values, an order-independent digest of them as text)}: a column whose values
    reappear under another name after a step (a rename, a copy) kept them."""
    found: dict[str, dict[str, tuple[int, int]]] = {}
    for table, columns in tables.items():
        if not columns:
            continue
        schema_name, table_name = table.split(".", 1)
        aggregates = [
            sql.SQL("count({0}), coalesce(sum(hashtextextended({0}::text, 0)), 0)").format(sql.Identifier(c))
            for c in columns
        ]
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(aggregates), sql.Identifier(schema_name, table_name)
        )
        row = conn.execute(query).fetchone()
        found[table] = {c: (int(row[2 * i]), int(row[2 * i + 1])) for i, c in enumerate(columns)}
    return found


def moved(before: dict[str, dict[str, tuple[int, int]]], after: dict[str, dict[str, tuple[int, int]]]) -> set[str]:
    """The columns (table.column, short) whose values all reappear in a column new after the step."""
    found = set()
    for table, columns in before.items():
        appeared = set(after.get(table, {}).values())
        found |= {f"{short(table)}.{c}" for c, digest in columns.items() if digest[0] and digest in appeared}
    return found


def destroyed(before: Schema, after: Schema, counts: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    """(what, name, non-null values lost) for each table and column present before and gone after."""
    lost = [("table", short(t), counts.get(t, {}).get("*", 0)) for t in before.columns if t not in after.columns]
    for table in set(before.columns) & set(after.columns):
        lost += [
            ("column", f"{short(table)}.{c}", counts.get(table, {}).get(c, 0))
            for c in before.columns[table]
            if c not in after.columns[table]
        ]
    return sorted(lost)


CONSTANT_DEFAULTS = """SELECT n.nspname || '.' || c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid)
                       FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                       JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relkind IN ('r', 'p') AND NOT a.attisdropped AND a.attgenerated = ''
                         AND n.nspname NOT IN ('pg_catalog', 'information_schema')"""
CONSTANT = re.compile(r"^\(*('(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false)\)*(::[\w .\[\]\"]+)*$", re.IGNORECASE)


def constant_default_counts(conn) -> dict[str, dict[str, int]]:
    """table -> {column: values equal to its constant default} for each column whose default is a constant (a
    literal, maybe cast): a value the migration filled in and would fill in again, not data anyone wrote. Volatile
    defaults (now(), a sequence) are left out: their values are data."""
    found: dict[str, dict[str, int]] = {}
    for table, column, expression in conn.execute(CONSTANT_DEFAULTS).fetchall():
        if not expression or not CONSTANT.match(expression.strip()):
            continue
        schema_name, table_name = table.split(".", 1)
        query = sql.SQL("SELECT count(*) FROM {} WHERE {} IS NOT DISTINCT FROM ({})").format(
            sql.Identifier(schema_name, table_name), sql.Identifier(column), sql.SQL(expression)
        )
        found.setdefault(table, {})[column] = conn.execute(query).fetchone()[0]
    return found


def data_lost(destroyed: list[tuple[str, str, int]], defaults: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    """What destroyed loses that is data: a dropped table's rows, a dropped column's values other than its constant
    default; entries with nothing lost are left out."""
    by_short = {f"{short(t)}.{c}": n for t, columns in defaults.items() for c, n in columns.items()}
    lost = [(what, name, n - (by_short.get(name, 0) if what == "column" else 0)) for what, name, n in destroyed]
    return [entry for entry in lost if entry[2] > 0]


class LiveWatch:
    """The live database watched while steps run on a scratch copy: its schema must not move, step after step (a
    downgrade followed by an upgrade ends where it began, so only a look after each step sees it)."""

    def __init__(self, target, version_query: str) -> None:
        self.target, self.version_query = target, version_query
        self.database = target.dsn and postgres.database_name(target.dsn)
        self.before = self.read() if target.dsn else None
        self.writes_before = self.read_writes()

    def read(self) -> Schema:
        with self.target.database() as conn:
            return schema(conn, self.version_query)

    def read_writes(self) -> Writes | None:
        if not self.database:
            return None
        with self.target.database() as conn:
            return writes(conn, self.database)

    def changes(self) -> list[str]:
        """How the live schema differs from when the watch began ([] when unchanged or no database)."""
        return self.before.differences(self.read()) if self.before is not None else []

    def writes_since(self) -> Writes | None:
        """Rows written to the live database meanwhile: the service's own traffic included, so evidence only."""
        now = self.read_writes()
        return now.since(self.writes_before) if now and self.writes_before else None


def scratch_effect(dsn: str, version_query: str) -> str:
    """What a step left in a scratch database ("" if nothing): its tables, or the rows written there."""
    with postgres.connect(dsn, "scratch database") as conn:
        tables = schema(conn, version_query).tables
        activity = writes(conn, postgres.database_name(dsn))
    if tables:
        return f"{len(tables)} tables ({', '.join(short(t) for t in tables[:5])}{', ...' if len(tables) > 5 else ''})"
    if activity.inserted or activity.deleted or activity.updated:
        return activity.describe()
    return ""
