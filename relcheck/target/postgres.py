"""PostgreSQL: an embedded server for the default target (pgserver), connections with one-line errors,
and the client tools (pg_dump, pg_restore, psql) matching the server."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from relcheck.core.errors import TargetError
from relcheck.core.secrets import register, safe_url

if TYPE_CHECKING:
    from pgserver import PostgresServer

CONNECT_TIMEOUT_S = 5


READ_ONLY = "-c default_transaction_read_only=on"


def connect(
    dsn: str,
    what: str = "database",
    autocommit: bool = True,
    timeout: float = CONNECT_TIMEOUT_S,
    read_only: bool = False,
):
    """A psycopg connection, or TargetError with one line saying why not (auth, unreachable, timeout). read_only:
    the server refuses any write in the session (relcheck's sessions on a live database are all read-only)."""
    if not dsn:  # libpq would fall back to the caller's PG* variables: a server the config never names
        raise TargetError(f"{what}: no database configured (target.dsn)")
    options = READ_ONLY if read_only else None  # None: not set
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=max(1, int(timeout)), options=options)
    except psycopg.OperationalError as exc:
        raise TargetError(f"{what}: {describe_connect_error(exc)} ({safe_url(dsn)})") from None


def describe_connect_error(exc: Exception) -> str:
    text = str(exc).strip()
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return "authentication failed (check the user and password in the DSN)"
    if "does not exist" in lowered:
        return text.splitlines()[-1].split("FATAL:")[-1].strip()
    if "timeout" in lowered or "timed out" in lowered:
        return "connection timed out"
    if "no such file" in lowered or "connection refused" in lowered or "could not connect" in lowered:
        return "server unreachable"
    return text.splitlines()[-1] if text else type(exc).__name__


def data_directory(target) -> str:
    """The server's data directory, when the admin role may see it; "" otherwise."""
    try:
        with connect(target.admin_dsn, "admin database") as conn:
            return conn.execute("SHOW data_directory").fetchone()[0]
    except (psycopg.Error, TargetError):
        return ""


def query(dsn: str, sql: str, params=None) -> list[tuple]:
    """Rows of one read-only query."""
    with connect(dsn, read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def dsn_params(dsn: str) -> dict[str, str]:
    """The parameters a DSN (URL or key=value) sets (libpq parses each value as a string)."""
    return {key: str(value) for key, value in conninfo_to_dict(dsn).items() if value is not None}


def database_name(dsn: str) -> str:
    """The database a DSN (URL or key=value) names."""
    return dsn_params(dsn).get("dbname") or ""


def user_of(dsn: str) -> str:
    """The role a DSN (URL or key=value) connects as."""
    return dsn_params(dsn).get("user") or ""


def for_command_line(dsn: str) -> tuple[str, dict[str, str]]:
    """A DSN fit for a client tool's command line (which `ps` shows) and the environment that carries its password:
    ("host=... dbname=... user=...", {"PGPASSWORD": ...})."""
    parts = dsn_params(dsn)
    password = parts.pop("password", None)
    return make_conninfo("", **parts), ({"PGPASSWORD": password} if password else {})


def with_database(dsn: str, database: str) -> str:
    """The same server and credentials, another database (a URL stays a URL)."""
    if "://" not in dsn:
        return make_conninfo(dsn, dbname=database)
    return urlsplit(dsn)._replace(path="/" + database).geturl()


def client_tool(name: str, bin_dir: Path | None = None) -> str:
    """Path of pg_dump/pg_restore/psql: from bin_dir, else pgserver's bundled binaries, else PATH."""
    candidates = [bin_dir] if bin_dir else []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH
        candidates.append(POSTGRES_BIN_PATH)
    except ImportError:  # pragma: no cover - pgserver is a dependency
        pass
    for directory in candidates:
        if directory and (Path(directory) / name).is_file():
            return str(Path(directory) / name)
    found = shutil.which(name)
    if not found:
        raise TargetError(f"{name} not found (install PostgreSQL client tools or set its directory)")
    return found


class EmbeddedPostgres:
    """A private PostgreSQL 16 in a temporary directory (pgserver), reachable only through its unix socket.

    The superuser connects by trust over the socket; the application role gets a SCRAM password, so the
    service authenticates the way it would in production.
    """

    def __init__(self, workdir: Path) -> None:
        self.pgdata = workdir / "pgdata"
        self.server: PostgresServer | None = None

    def start(self) -> "EmbeddedPostgres":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            try:
                self.server = pgserver.get_server(self.pgdata, cleanup_mode="delete")
            except Exception as exc:
                raise TargetError(f"embedded PostgreSQL did not start: {type(exc).__name__}: {exc}") from None
        return self

    @property
    def socket_dir(self) -> str:
        if self.server is None:
            raise TargetError("embedded PostgreSQL is not started")
        return self.server.get_uri().split("host=", 1)[1].split("&", 1)[0]

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={quote(self.socket_dir)}"

    def dsn(self, database: str, user: str, password: str) -> str:
        return f"postgresql://{quote(user)}:{quote(password, safe='')}@/{database}?host={quote(self.socket_dir)}"

    def create_app_database(self, database: str, user: str, password: str) -> str:
        """Create a login role with a password and a database it owns; the role must use SCRAM."""
        register(password)
        with connect(self.admin_dsn(), "embedded PostgreSQL") as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), sql.Literal(password))
            )
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(user)))
            hba = self.pgdata / "pg_hba.conf"
            hba.write_text(f"local all {user} scram-sha-256\n" + hba.read_text())
            conn.execute("SELECT pg_reload_conf()")
        return self.dsn(database, user, password)

    def create_database(self, database: str, user: str, password: str) -> str:
        """Another database owned by the application role."""
        with connect(self.admin_dsn(), "embedded PostgreSQL") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(user)))
        return self.dsn(database, user, password)

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None
