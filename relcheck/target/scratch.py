"""Scratch databases: the only databases relcheck ever writes to. Each is named by relcheck (a fixed prefix plus the
run id, never a configured name), carries a marker comment from its creation, and is dropped when its use ends; a
database without the marker is never dropped or restored into, and the target's own databases are refused outright.

    with scratch_database(target, "tests") as scratch:      # relcheck_scratch_<run id>_tests, marked
        run_tests(env={"DATABASE_URL": scratch.dsn})
    # dropped here, also on failure, Ctrl-C and SIGTERM (the plugin turns SIGTERM into KeyboardInterrupt)

A framework's test database derived from a scratch name (Django's and pytest-django's test_<name>, the clones
test_<name>_1 ... of --parallel, test_<name>_gw0 ... of xdist) is part of that scratch database's use: relcheck may
create it, and drops it by its derived name with the scratch database, or at the next start once its scratch database
is gone or abandoned.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import psutil
import psycopg
from psycopg import sql

from relcheck.core.errors import TargetError
from relcheck.core.statuses import NotVerified
from relcheck.target import postgres

PREFIX = "relcheck_scratch_"
DERIVED = "test_"  # what Django and pytest-django put before the database name they are given
MARKER = "relcheck scratch database "
MAINTENANCE_DATABASES = {"postgres", "template0", "template1"}
RUN_ID = f"{time.strftime('%Y%m%d%H%M%S')}_{os.getpid()}"


class ScratchUnavailable(TargetError, NotVerified):
    """No scratch database can be made here (the role may not create databases): what needs one is not verified."""


class ScratchRefused(TargetError):
    """relcheck would have written to a database that is not one of its scratch copies."""


@dataclass(frozen=True)
class DsnParts:
    """A DSN and the parts services read separately (POSTGRES_HOST, POSTGRES_DB, ...)."""

    dsn: str
    host: str
    port: str
    db: str
    user: str
    password: str

    @classmethod
    def of(cls, dsn: str) -> "DsnParts":
        parts = postgres.dsn_params(dsn)
        return cls(
            dsn,
            parts.get("host") or "localhost",
            parts.get("port") or "5432",
            parts.get("dbname") or "",
            parts.get("user") or "",
            parts.get("password") or "",
        )

    def placeholders(self, prefix: str) -> dict[str, str]:
        """{prefix}_dsn is the DSN itself when prefix is "scratch"; {dsn} and {dsn_host} ... for the live one."""
        values = {
            f"{prefix}_host": self.host,
            f"{prefix}_port": self.port,
            f"{prefix}_db": self.db,
            f"{prefix}_user": self.user,
            f"{prefix}_password": self.password,
        }
        values[prefix if prefix == "dsn" else f"{prefix}_dsn"] = self.dsn
        return values


def scratch_name(purpose: str) -> str:
    name = f"{PREFIX}{RUN_ID}_{purpose}"
    if len(name) > 63:
        raise ValueError(f"scratch database name too long: {name}")
    return name


def protected_names(target) -> set[str]:
    """Databases that are never scratch copies: the target's (its DSNs name them) and the server's own."""
    return {postgres.database_name(dsn) for dsn in (target.dsn, target.admin_dsn) if dsn} | MAINTENANCE_DATABASES


def refuse_unless_scratch(name: str, target) -> None:
    """One-line refusal for a name that is not a relcheck scratch name or that names one of the target's databases."""
    if name in protected_names(target):
        raise ScratchRefused(f"refusing to use {name} as a scratch database: it is one of the target's databases")
    if not name.startswith((PREFIX, DERIVED + PREFIX)):
        raise ScratchRefused(f"refusing to use {name} as a scratch database: scratch names start with {PREFIX}")


def marker_of(conn, name: str) -> dict | None:
    """The marker relcheck wrote on a database it created, or None (no such database, or not relcheck's)."""
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (name,)
    ).fetchone()
    comment = row[0] if row else None
    if not comment or not comment.startswith(MARKER):
        return None
    try:
        return json.loads(comment[len(MARKER) :])
    except ValueError:
        return None


@dataclass(frozen=True)
class Scratch:
    name: str
    dsn: str

    @property
    def parts(self) -> DsnParts:
        return DsnParts.of(self.dsn)


def admin_connection(target):
    return postgres.connect(postgres.with_database(target.admin_dsn, "postgres"), "admin database")


def create(target, purpose: str, name: str = "") -> Scratch:
    """A new, empty, marked database owned by the application's role (named for purpose, or a derived name)."""
    name = name or scratch_name(purpose)
    refuse_unless_scratch(name, target)
    owner = postgres.query(target.dsn, "SELECT current_user")[0][0]
    marker = {"run": RUN_ID, "host": socket.gethostname(), "pid": os.getpid(), "created": time.time()}
    with admin_connection(target) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            raise ScratchRefused(f"scratch database {name} exists already")
        try:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
        except psycopg.errors.InsufficientPrivilege:
            raise ScratchUnavailable(
                f"no scratch database: the role of target.admin_dsn ({postgres.user_of(target.admin_dsn)}) may not "
                "create databases (set target.admin_dsn to one that may)"
            ) from None
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(MARKER + json.dumps(marker))
            )
        )
    return Scratch(name, postgres.with_database(target.dsn, name))


def create_derived(target, scratch: Scratch) -> Scratch:
    """The framework's test database of a scratch database, made by relcheck (the app role need not create
    databases): Django given scratch.name uses it with --keepdb."""
    return create(target, "", DERIVED + scratch.name)


def derived_from(name: str, scratch: str) -> bool:
    return name == DERIVED + scratch or name.startswith(f"{DERIVED}{scratch}_")


def names_like(conn, prefix: str) -> list[str]:
    pattern = prefix.replace("_", r"\_") + "%"
    return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1", (pattern,))]


def drop(target, name: str) -> None:
    """Drop a scratch database, only if it carries relcheck's marker and is none of the target's databases, and the
    test databases derived from its name first."""
    refuse_unless_scratch(name, target)
    with admin_connection(target) as conn:
        for derived in [n for n in names_like(conn, DERIVED + name) if derived_from(n, name)]:
            drop_now(conn, derived, target)
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            return
        if marker_of(conn, name) is None:
            raise ScratchRefused(f"refusing to drop {name}: it has no relcheck marker")
        drop_now(conn, name, target)


def drop_now(conn, name: str, target) -> None:
    refuse_unless_scratch(name, target)
    conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def scratch_database(target, purpose: str) -> Iterator[Scratch]:
    scratch = create(target, purpose)
    try:
        yield scratch
    finally:
        drop(target, scratch.name)


def leftovers(target) -> list[tuple[str, dict]]:
    """Marked scratch databases on the target's server, with their markers."""
    with admin_connection(target) as conn:
        return [(name, marker) for name in names_like(conn, PREFIX) if (marker := marker_of(conn, name)) is not None]


def orphans(conn, scratches: list[str]) -> list[str]:
    """Test databases derived from a scratch name none of scratches (the scratch databases still in use) is."""
    return [name for name in names_like(conn, DERIVED + PREFIX) if not any(derived_from(name, s) for s in scratches)]


def abandoned(marker: dict, now: float, max_age_s: float = 24 * 3600) -> bool:
    """Left by a run that is over: its process is gone from this host, or (another host's) it is a day old."""
    if marker.get("host") == socket.gethostname():
        pid = marker.get("pid")
        return not (isinstance(pid, int) and psutil.pid_exists(pid))
    return now - float(marker.get("created", now)) > max_age_s


def sweep(target) -> list[str]:
    """Drop the scratch databases crashed runs left behind; their names, to report. Never raises: a server where
    relcheck may not list or drop databases simply has nothing swept."""
    dropped = []
    try:
        in_use = []
        for name, marker in leftovers(target):
            if abandoned(marker, time.time()):
                drop(target, name)
                dropped.append(name)
            else:
                in_use.append(name)
        with admin_connection(target) as conn:
            for name in orphans(conn, in_use):  # their scratch database is gone (a run killed outright)
                drop_now(conn, name, target)
                dropped.append(name)
    except (TargetError, psycopg.Error):
        pass
    return dropped
