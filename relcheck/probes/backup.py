"""Backups proven by a restore: pg_dump -Fc, its SHA-256, pg_restore into a scratch database, and per-table row
counts and content checksums compared with the source. pg_dump and the source's fingerprints read one exported
snapshot (DESIGN: consistent backup proof), so writes while the backup is taken change neither side."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from relcheck.core.errors import RelcheckError, ToolError
from relcheck.target import commands, postgres

TABLES = """SELECT table_schema, table_name FROM information_schema.tables
            WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
            ORDER BY 1, 2"""


@dataclass
class TableFingerprint:
    table: str
    rows: int
    checksum: str


def fingerprints(conn) -> dict[str, TableFingerprint]:
    """Row count and an order-independent content checksum (md5 of the sorted row texts) of every table."""
    found = {}
    for schema, table in conn.execute(TABLES).fetchall():
        query = sql.SQL(
            "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {} AS t"
        ).format(sql.Identifier(schema, table))
        rows, checksum = conn.execute(query).fetchone()
        name = f"{schema}.{table}"
        found[name] = TableFingerprint(name, rows, checksum)
    return found


@contextmanager
def snapshot(dsn: str) -> Iterator[tuple[psycopg.Connection, str]]:
    """A read-only REPEATABLE READ transaction on the database and the id of its exported snapshot: whatever reads
    in the transaction, or runs with `pg_dump --snapshot=<id>` while it is open, sees the same state."""
    with postgres.connect(dsn, "source database", read_only=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield conn, conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        conn.execute("COMMIT")


def snapshot_fingerprints(dsn: str) -> dict[str, TableFingerprint]:
    """Every table's fingerprint, all read in one snapshot (a write between two tables cannot split them)."""
    with snapshot(dsn) as (conn, _):
        return fingerprints(conn)


class Failed(ToolError):
    """The tool ran and exited non-zero (not: it is missing or timed out)."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_tool(command: list[str], what: str, timeout: float = 600, env: dict[str, str] | None = None) -> None:
    """A PostgreSQL client tool: ToolError when it could not run or finish, Failed when it refused."""
    result = commands.run(command, timeout=timeout, tool_env=env)
    if result.problem:
        raise ToolError(result.failure(what))
    if not result.ok:
        raise Failed(result.failure(what))


def private_dir(path: Path) -> Path:
    """A directory only relcheck's user can enter (0700): backups hold the whole database."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def new_dump_file(directory: Path, stem: str) -> Path:
    """An empty 0600 file in a 0700 directory for pg_dump (or a backup command) to write into: never readable by
    others, not even while it is written."""
    path = private_dir(directory) / f"{stem}.dump"
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    path.chmod(0o600)
    return path


def prune(directory: Path, keep: int, protect: Collection[Path] = frozenset()) -> list[Path]:
    """Delete all but the newest `keep` dumps (never a protected one, e.g. the one a deploy record names)."""
    dumps = sorted(directory.glob("*.dump"), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = [p for p in dumps[keep:] if p.resolve() not in {q.resolve() for q in protect}]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def dump(dsn: str, path: Path, pg_dump: str) -> dict[str, TableFingerprint]:
    """pg_dump -Fc in an exported snapshot; the fingerprints of the tables as that snapshot (the dump) has them."""
    if not path.exists():
        new_dump_file(path.parent, path.stem)
    visible, secret = postgres.for_command_line(dsn)
    with snapshot(dsn) as (conn, snapshot_id):
        found = fingerprints(conn)
        run_tool(
            [pg_dump, "-Fc", "--no-owner", f"--snapshot={snapshot_id}", "-f", str(path), "--dbname", visible],
            "pg_dump",
            env=secret,
        )
    return found


def restore(path: Path, dsn: str, pg_restore: str) -> None:
    """Into an empty database, all or nothing."""
    visible, secret = postgres.for_command_line(dsn)
    run_tool(
        [pg_restore, "--exit-on-error", "--single-transaction", "--no-owner", "--dbname", visible, str(path)],
        "pg_restore",
        env=secret,
    )


@dataclass
class Comparison:
    table: str
    source_rows: int | None
    restored_rows: int | None
    source_checksum: str
    restored_checksum: str

    @property
    def equal(self) -> bool:
        return self.source_rows == self.restored_rows and self.source_checksum == self.restored_checksum


def against_backup(conn, tables: dict[str, dict]) -> list[Comparison]:
    """The database now, compared table by table with the fingerprints a deploy record kept of its backup."""
    return compare({t: TableFingerprint(**f) for t, f in tables.items()}, fingerprints(conn))


def compare(source: dict[str, TableFingerprint], restored: dict[str, TableFingerprint]) -> list[Comparison]:
    rows = []
    for table in sorted(set(source) | set(restored)):
        s, r = source.get(table), restored.get(table)
        rows.append(
            Comparison(
                table, s.rows if s else None, r.rows if r else None, s.checksum if s else "", r.checksum if r else ""
            )
        )
    return rows


@dataclass
class Proof:
    """A backup file and what restoring it showed."""

    path: Path
    sha256: str = ""
    size: int = 0
    source: dict[str, TableFingerprint] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    error: str = ""  # a definite finding: the backup made no file, or its file does not restore
    unverified: str = ""  # the proof could not be made (a tool missing or failing, a refused login, writes)

    @property
    def proven(self) -> bool:
        return not (self.error or self.unverified) and bool(self.comparisons) and all(c.equal for c in self.comparisons)

    @property
    def problem(self) -> str:
        """Why it is not proven, in one line."""
        return self.unverified or self.error or ("" if self.proven else "restored data differs")


def prove(
    path: Path,
    source_dsn: str,
    scratch_dsn: str,
    pg_dump: str | None,
    pg_restore: str,
    backup_command: Callable[[], object] | None = None,
) -> Proof:
    """Back up into path, restore it into the scratch database and compare the restored tables with the source.

    pg_dump (no backup_command): the dump and the source's fingerprints read one exported snapshot, so writes during
    and after the dump change neither side; a difference is the backup's.
    backup_command (it writes path; relcheck cannot put it in a snapshot): the source is fingerprinted, each time in
    one snapshot, before the command runs and after the restore. The file is proven if it restores to either state.
    If it restores to neither, the difference is the backup's only when the source did not change in between; when it
    did (the database was written meanwhile), the file is not comparable: not verified, never a failure."""
    proof = Proof(path)
    try:
        if backup_command is None:
            proof.source = dump(source_dsn, path, pg_dump or "pg_dump")
        else:
            before = snapshot_fingerprints(source_dsn)
            backup_command()
        if not path.is_file():
            proof.error = f"the backup command made no file {path}"
            return proof
        proof.sha256, proof.size = sha256(path), path.stat().st_size
        try:
            restore(path, scratch_dsn, pg_restore)
        except Failed as exc:
            proof.error = str(exc)  # the file does not restore
            return proof
        with postgres.connect(scratch_dsn, "scratch database") as conn:
            restored = fingerprints(conn)
        if backup_command is not None:
            after = snapshot_fingerprints(source_dsn)
            proof.source = before if restored == before else after
            if restored not in (before, after) and before != after:
                written = ", ".join(c.table for c in compare(before, after) if not c.equal)
                proof.unverified = (
                    f"not comparable: the database was written while deploy.backup_command ran ({written} changed), "
                    "and the file restores to neither state; leave deploy.backup_command empty (pg_dump in one "
                    "snapshot) or back up while nothing writes"
                )
        proof.comparisons = compare(proof.source, restored)
    except RelcheckError as exc:
        proof.unverified = str(exc)
    return proof


def row_digests(conn, table: str, columns: list[str]) -> Counter:
    """The multiset of a table's rows over the given columns, as md5 digests."""
    schema_name, table_name = table.split(".", 1)
    query = sql.SQL("SELECT md5(ROW({})::text) FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(schema_name, table_name)
    )
    return Counter(row[0] for row in conn.execute(query))


@dataclass
class Discard:
    """What restoring a backup over a table throws away: rows that are new or changed since the backup, and the
    values of columns the backup does not have."""

    table: str
    rows: int
    columns: dict[str, int] = field(default_factory=dict)  # column -> non-null values lost


def discarded(current_conn, backup_conn) -> list[Discard]:
    """Compare the current database with the backup restored elsewhere, table by table."""
    from relcheck.target import dbstate

    now, then = dbstate.schema(current_conn, ""), dbstate.schema(backup_conn, "")
    counts = dbstate.non_null_counts(current_conn, now.columns)
    found = []
    for table, columns in now.columns.items():
        kept = [c for c in columns if c in then.columns.get(table, {})]
        if table not in then.columns or not kept:
            lost_rows = counts[table]["*"]
        else:
            lost_rows = sum((row_digests(current_conn, table, kept) - row_digests(backup_conn, table, kept)).values())
        lost_columns = {
            c: counts[table][c] for c in columns if table in then.columns and c not in kept and counts[table][c]
        }
        if lost_rows or lost_columns:
            found.append(Discard(dbstate.short(table), lost_rows, lost_columns))
    return found


def recreate_database(admin_dsn: str, name: str, owner: str) -> None:
    """Drop and create a database (sessions ended), ready for a restore; from the maintenance database."""
    with postgres.connect(postgres.with_database(admin_dsn, "postgres"), "admin database") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
