"""What the service's database holds, read in a read-only session: server version, tables, audit-like tables and
the migration tool's version table."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from relcheck.core.errors import TargetError
from relcheck.target import postgres

AUDIT_LIKE = re.compile(r"audit|history|event|activity|journal", re.I)
VERSION_TABLES = {
    "alembic_version": "SELECT version_num FROM alembic_version",
    "django_migrations": "SELECT max(id) FROM django_migrations",
    "schema_migrations": "SELECT version FROM schema_migrations",
}
TABLES = """
SELECT table_schema, table_name FROM information_schema.tables
WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
ORDER BY table_schema, table_name
"""
COLUMNS = "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"


@dataclass
class DatabaseFound:
    version: str = ""
    tables: list[str] = field(default_factory=list)
    audit_tables: dict[str, list[str]] = field(default_factory=dict)  # table -> columns
    version_query: str = ""  # the schema version, for the rollback plan's checks
    error: str = ""


def discover(dsn: str) -> DatabaseFound:
    found = DatabaseFound()
    try:
        with postgres.connect(dsn, "database", read_only=True) as conn:
            found.version = conn.execute("SHOW server_version").fetchone()[0]
            rows = conn.execute(TABLES).fetchall()
            found.tables = [name if schema == "public" else f"{schema}.{name}" for schema, name in rows]
            for schema, name in rows:
                if AUDIT_LIKE.search(name):
                    columns = conn.execute(COLUMNS, (schema, name)).fetchall()
                    found.audit_tables[name] = [c for (c,) in columns]
    except TargetError as exc:
        found.error = str(exc)
        return found
    found.version_query = next((q for table, q in VERSION_TABLES.items() if table in found.tables), "")
    return found
