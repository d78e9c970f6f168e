"""Data integrity beyond row counts, on a read-only session: the tables the release must leave as they were (their
checksums against the deploy's backup), the service's invariants (SQL that must return no rows) and rows whose
foreign key points at no row (a constraint added NOT VALID, disabled triggers, a bulk load)."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from relcheck.probes.backup import Comparison

FOREIGN_KEYS = """
SELECT c.conname, cn.nspname, cl.relname, pn.nspname, pl.relname,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(n, i)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
FROM pg_constraint c
JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace cn ON cn.oid = cl.relnamespace
JOIN pg_class pl ON pl.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = pl.relnamespace
WHERE c.contype = 'f' AND cn.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY cn.nspname, cl.relname, c.conname
"""


@dataclass
class DataIntegrity:
    """What the database holds now against the deploy's backup, and what it must hold at any time."""

    since_backup: list[Comparison]
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # check, subject, result
    problems: list[str] = field(default_factory=list)  # definite findings beyond the backup comparison
    unverified: list[str] = field(default_factory=list)  # parts that could not be checked, with why

    @property
    def lost(self) -> list[str]:
        """Tables with fewer rows than before the deploy (or gone)."""
        return [
            f"{c.table} ({c.source_rows} -> {c.restored_rows})"
            for c in self.since_backup
            if c.source_rows is not None and (c.restored_rows is None or c.restored_rows < c.source_rows)
        ]

    @property
    def different(self) -> list[str]:
        """Tables that are not what the backup holds (after a restore: nothing may differ)."""
        return [c.table for c in self.since_backup if not c.equal]


def judge(conn, since_backup: list[Comparison], cfg) -> DataIntegrity:
    """cfg: the [integrity] section (unchanged_tables, invariants, foreign_keys)."""
    found = DataIntegrity(since_backup)
    unchanged(found, cfg.unchanged_tables)
    for name, query in cfg.invariants.items():
        invariant(conn, found, name, query)
    if cfg.foreign_keys:
        orphans(conn, found)
    return found


def unchanged(found: DataIntegrity, tables: list[str]) -> None:
    by_table = {c.table: c for c in found.since_backup}
    for table in tables:
        name = table if "." in table else f"public.{table}"
        comparison = by_table.get(name)
        if comparison is None or comparison.source_rows is None:
            found.unverified.append(f"{name} is not in the deploy's backup (integrity.unchanged_tables)")
        elif comparison.restored_rows is None:
            found.problems.append(f"{name} must be unchanged but is gone")
            found.rows.append(("unchanged since the backup", name, "GONE"))
        else:
            same = comparison.equal
            found.rows.append(("unchanged since the backup", name, "yes" if same else "CHANGED"))
            if not same:
                found.problems.append(
                    f"{name} must be unchanged but differs from the backup "
                    f"({comparison.source_rows} -> {comparison.restored_rows} rows, checksum changed)"
                )


def invariant(conn, found: DataIntegrity, name: str, query: str) -> None:
    try:
        counted = sql.SQL("SELECT count(*) FROM ({}) AS violations").format(sql.SQL(query))  # the user's own SQL
        violations = conn.execute(counted).fetchone()[0]
    except psycopg.Error as exc:
        found.unverified.append(f"invariant {name!r} could not run: {first_line(exc)} (integrity.invariants)")
        found.rows.append(("invariant", name, "could not run"))
        return
    found.rows.append(("invariant", name, "holds" if not violations else f"VIOLATED by {violations} rows"))
    if violations:
        found.problems.append(f"invariant {name!r} violated by {violations} rows")


def orphans(conn, found: DataIntegrity) -> None:
    try:
        keys = conn.execute(FOREIGN_KEYS).fetchall()
    except psycopg.Error as exc:
        found.unverified.append(f"the foreign keys could not be read: {first_line(exc)}")
        return
    for constraint, schema, table, parent_schema, parent, columns, parent_columns in keys:
        query = sql.SQL("SELECT count(*) FROM {} AS c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})").format(
            sql.Identifier(schema, table),
            sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier("c", col)) for col in columns),
            sql.Identifier(parent_schema, parent),
            sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier("p", pcol), sql.Identifier("c", col))
                for col, pcol in zip(columns, parent_columns, strict=True)
            ),
        )
        subject = f"{schema}.{table}({', '.join(columns)}) -> {parent_schema}.{parent}"
        try:
            count = conn.execute(query).fetchone()[0]
        except psycopg.Error as exc:
            found.unverified.append(f"the orphans of {constraint} could not be counted: {first_line(exc)}")
            continue
        found.rows.append(("rows with a foreign key to nothing", subject, "none" if not count else f"{count} ROWS"))
        if count:
            found.problems.append(f"{count} rows of {subject} point at no row ({constraint})")


def first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
