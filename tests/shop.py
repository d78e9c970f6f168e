"""A small third-party-style service for the live-data safety tests, written the way many real ones are: it reads its
database from POSTGRES_* variables (and ignores DATABASE_URL), or from a `.env` file in its tree; keeps its schema
version in its own table (not alembic's); and its own test suite wipes the users table. Its history has two releases:
v1.0.0 (schema 0001) and v1.1.0 (0002 adds item.created_at)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from gitrepo import Repo

DB = '''"""Database settings from POSTGRES_* variables, else from a .env file in the working directory."""
import os
from pathlib import Path

import psycopg


def setting(name, default):
    if name in os.environ:
        return os.environ[name]
    env_file = Path(".env")
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == name:
                return value.strip()
    return default


def connect():
    return psycopg.connect(host=setting("POSTGRES_HOST", "localhost"), port=setting("POSTGRES_PORT", "5432"),
                           dbname=setting("POSTGRES_DB", "shop"), user=setting("POSTGRES_USER", "shop"),
                           password=setting("POSTGRES_PASSWORD", ""), autocommit=True, connect_timeout=5)
'''

MIGRATE = '''"""python -m shop.migrate upgrade head | downgrade REVISION | heads"""
import sys

from shop.db import connect

REVISIONS = {revisions}


def current(conn):
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version text NOT NULL)")
    row = conn.execute("SELECT version FROM schema_migrations").fetchone()
    return row[0] if row else None


def set_version(conn, version):
    conn.execute("DELETE FROM schema_migrations")
    if version:
        conn.execute("INSERT INTO schema_migrations VALUES (%s)", (version,))


def main(argv):
    names = sorted(REVISIONS)
    if argv[0] == "heads":
        print(f"{{names[-1]}} (head)")
        return
    with connect() as conn:
        at = current(conn)
        done = names[:names.index(at) + 1] if at else []
        if argv[0] == "upgrade":
            for name in names[len(done):]:
                conn.execute(REVISIONS[name][0])
                set_version(conn, name)
        elif argv[0] == "downgrade":
            for name in reversed(done[names.index(argv[1]) + 1:]):
                conn.execute(REVISIONS[name][1])
                set_version(conn, names[names.index(name) - 1] if names.index(name) else None)


if __name__ == "__main__":
    main(sys.argv[1:])
'''

REVISIONS = {
    "0001": (
        "CREATE TABLE users (id serial PRIMARY KEY, name text UNIQUE NOT NULL, password_hash text NOT NULL);"
        "CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL)",
        "DROP TABLE item; DROP TABLE users",
    ),
    "0002": (
        "ALTER TABLE item ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()",
        "ALTER TABLE item DROP COLUMN created_at",
    ),
}

OWN_TESTS = """import os
import subprocess
import sys
import time

from shop.db import connect


def setup_module():
    subprocess.run([sys.executable, "-m", "shop.migrate", "upgrade", "head"], check=True)


def test_users_can_be_replaced():
    time.sleep(float(os.environ.get("SHOP_TEST_SLEEP", "0")))
    with connect() as conn:
        conn.execute("DELETE FROM users")
        conn.execute("INSERT INTO users (name, password_hash) VALUES ('test', 'pbkdf2_sha256$1$x$y')")
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 1
"""


def files(revisions: list[str]) -> dict[str, str]:
    chosen = {name: REVISIONS[name] for name in revisions}
    return {
        "shop/__init__.py": "",
        "shop/db.py": DB,
        "shop/migrate.py": MIGRATE.format(revisions=repr(chosen)),
        "tests/test_users.py": OWN_TESTS,
        "requirements.txt": "psycopg[binary]==3.2.3\n",
    }


def history(path: Path) -> Repo:
    repo = Repo(path)
    repo.commit("Release 1.0.0", files(["0001"]))
    repo.tag("v1.0.0")
    repo.commit("Items remember when they were created", files(["0001", "0002"]))
    repo.tag("v1.1.0")
    return repo


def postgres_env(dsn: str) -> dict[str, str]:
    """POSTGRES_* variables naming a database (what the service reads)."""
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    return {
        "POSTGRES_HOST": parts["host"],
        "POSTGRES_PORT": str(parts.get("port") or 5432),
        "POSTGRES_DB": parts["dbname"],
        "POSTGRES_USER": parts["user"],
        "POSTGRES_PASSWORD": parts["password"],
    }


def migrate(tree: Path, dsn: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "shop.migrate", *args],
        cwd=tree,
        check=True,
        capture_output=True,
        env={"PATH": os.environ["PATH"], **postgres_env(dsn)},
    )


SCRATCH_ENV = {
    "POSTGRES_HOST": "{scratch_host}",
    "POSTGRES_PORT": "{scratch_port}",
    "POSTGRES_DB": "{scratch_db}",
    "POSTGRES_USER": "{scratch_user}",
    "POSTGRES_PASSWORD": "{scratch_password}",
}
DEPLOY_ENV = {
    "POSTGRES_HOST": "{dsn_host}",
    "POSTGRES_PORT": "{dsn_port}",
    "POSTGRES_DB": "{dsn_db}",
    "POSTGRES_USER": "{dsn_user}",
    "POSTGRES_PASSWORD": "{dsn_password}",
}


def config_changes(tree: Path, repo: Path) -> dict:
    """relcheck config for the shop service (merged over the test defaults)."""
    python = sys.executable
    return {
        "target": {"source": str(tree), "repository": str(repo)},
        "quality": {
            "tests": {
                "command": ["{python}", "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
                "env": SCRATCH_ENV,
            },
            "coverage": {"source": ["shop"], "threshold_percent": 0.0},
        },
        "docs": {"migration_head": [python, "-m", "shop.migrate", "heads"]},
        "deploy": {
            "migrate": ["{python}", "-m", "shop.migrate", "upgrade", "head"],
            "downgrade": ["{python}", "-m", "shop.migrate", "downgrade", "{previous_head}"],
            "install": ["{python}", "-m", "pip", "--version"],
            "env": DEPLOY_ENV,
            "schema_version_query": "SELECT version FROM schema_migrations",
        },
    }


def state(dsn: str) -> dict:
    """Everything a look with psql would compare: each table's columns and rows, in order."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
            )
        ]
        found = {}
        for table in tables:
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE "
                    "table_name = %s ORDER BY ordinal_position",
                    (table,),
                )
            ]
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608 - test tables
            found[table] = (columns, [tuple(map(str, row)) for row in rows])
        return found


def admin_can_log_in(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE name = 'admin'").fetchone()
        return row is not None and row[0] == "pbkdf2_sha256$600000$salt$hash"


def seed(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (name, password_hash) VALUES ('admin', 'pbkdf2_sha256$600000$salt$hash'), "
            "('ravi', 'pbkdf2_sha256$600000$salt$other')"
        )
        conn.execute(
            "INSERT INTO item (name, created_at) VALUES ('a', '2026-11-01T10:00:00Z'), ('b', '2026-11-02T10:00:00Z')"
        )


def scratch_databases(admin_dsn: str) -> list[str]:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'relcheck%'")]
