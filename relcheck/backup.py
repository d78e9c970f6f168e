"""Backups proven by a restore: pg_dump -Fc, its SHA-256, pg_restore into a scratch database, and per-table row
counts and content checksums compared with the source."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from . import postgres
from .errors import ToolError
from .secrets import redact

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
        query = sql.SQL("SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') "
                        "FROM {} AS t").format(sql.Identifier(schema, table))
        rows, checksum = conn.execute(query).fetchone()
        name = f"{schema}.{table}"
        found[name] = TableFingerprint(name, rows, checksum)
    return found


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_tool(command: list[str], what: str, timeout: float = 600) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ToolError(f"{what}: {command[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise ToolError(f"{what}: did not finish within {timeout:g}s") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise ToolError(f"{what} failed (exit {result.returncode}): {redact(lines[-1]) if lines else 'no output'}")


def dump(dsn: str, path: Path, pg_dump: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    run_tool([pg_dump, "-Fc", "--no-owner", "-f", str(path), "--dbname", dsn], "pg_dump")


def restore(path: Path, dsn: str, pg_restore: str) -> None:
    """Into an empty database, all or nothing."""
    run_tool([pg_restore, "--exit-on-error", "--single-transaction", "--no-owner", "--dbname", dsn, str(path)],
             "pg_restore")


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


def compare(source: dict[str, TableFingerprint], restored: dict[str, TableFingerprint]) -> list[Comparison]:
    rows = []
    for table in sorted(set(source) | set(restored)):
        s, r = source.get(table), restored.get(table)
        rows.append(Comparison(table, s.rows if s else None, r.rows if r else None, s.checksum if s else "",
                               r.checksum if r else ""))
    return rows


@dataclass
class Proof:
    """A backup file and what restoring it showed."""
    path: Path
    sha256: str = ""
    size: int = 0
    source: dict[str, TableFingerprint] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    error: str = ""

    @property
    def proven(self) -> bool:
        return not self.error and bool(self.comparisons) and all(c.equal for c in self.comparisons)


def prove(path: Path, source_dsn: str, scratch_dsn: str, pg_dump: str | None, pg_restore: str,
          make: bool = True) -> Proof:
    """Dump (unless make=False: prove an existing file), fingerprint the source, restore into the scratch
    database, fingerprint it and compare. The source is fingerprinted right after the dump; concurrent writes
    show up as differences, so back up a quiet database."""
    proof = Proof(path)
    try:
        if make:
            dump(source_dsn, path, pg_dump)
        if not path.is_file():
            raise ToolError(f"backup file {path} does not exist")
        proof.sha256, proof.size = sha256(path), path.stat().st_size
        with postgres.connect(source_dsn, "source database") as conn:
            proof.source = fingerprints(conn)
        restore(path, scratch_dsn, pg_restore)
        with postgres.connect(scratch_dsn, "scratch database") as conn:
            proof.comparisons = compare(proof.source, fingerprints(conn))
    except ToolError as exc:
        proof.error = str(exc)
    return proof


def recreate_database(admin_dsn: str, name: str, owner: str) -> None:
    """Drop and create a database (sessions ended), ready for a restore; from the maintenance database."""
    with postgres.connect(postgres.with_database(admin_dsn, "postgres"), "admin database") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
