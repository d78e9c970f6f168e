"""Every statement a migration sends, as the database saw it: a loopback proxy between the migration tool and a
scratch copy reads the PostgreSQL wire protocol (Query/Parse/Bind from the client, ReadyForQuery from the server) and,
through a second session, the relation locks the migration's backend holds after each statement and, every few
milliseconds, while a statement runs. Nothing is changed in what passes through. Any tool, any language: it only has
to connect where it is told (the `{dsn}` placeholders)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from psycopg.conninfo import make_conninfo

from relcheck.target import postgres

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
LOCKS = "SELECT relation, mode FROM pg_locks WHERE pid = %s AND locktype = 'relation' AND granted"
SAMPLE_S = 0.005


@dataclass
class Statement:
    """One statement of one session: when it ran (monotonic seconds), the relation locks (oid -> modes) its session
    held during or right after it, and whether a transaction was still open after it."""

    pid: int
    sql: str
    started: float
    ended: float = 0.0
    in_transaction: bool = False
    locks: dict[int, set[str]] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.ended - self.started


def at_address(dsn: str, host: str, port: int) -> str:
    """The same database and credentials through another address, plaintext (a URL stays a URL)."""
    if "://" not in dsn:
        return make_conninfo(dsn, host=host, port=str(port), sslmode="disable")
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port", "hostaddr", "sslmode")]
    auth = parts.netloc.rpartition("@")[0]  # as written: still percent-encoded
    netloc = f"{auth}@{host}:{port}" if auth else f"{host}:{port}"
    return parts._replace(netloc=netloc, query=urlencode([*query, ("sslmode", "disable")])).geturl()


def upstream_socket(dsn: str) -> socket.socket:
    params = postgres.dsn_params(dsn)
    host, port = params.get("host") or "localhost", int(params.get("port") or 5432)
    if host.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(f"{host}/.s.PGSQL.{port}")
        return sock
    sock = socket.create_connection((host, port), timeout=30)
    sock.settimeout(None)  # a statement may run for minutes
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    """A typed protocol message: its type byte and its whole bytes (type, length, body)."""
    head = read_exact(sock, 5)
    return head[:1], head + read_exact(sock, struct.unpack("!I", head[1:])[0] - 4)


def c_strings(body: bytes, count: int) -> list[str]:
    return [s.decode("utf-8", "replace") for s in body.split(b"\0", count)[:count]]


class Recorder:
    """The statements of every session through one proxy, and the side session that reads their locks."""

    def __init__(self, dsn: str) -> None:
        self.statements: list[Statement] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._side = postgres.connect(dsn, "scratch database")
        self._side.autocommit = True

    def merge(self, statement: Statement, pid: int) -> None:
        """Add the relation locks the session holds now to the statement's."""
        with self._lock:
            for oid, mode in self._side.execute(LOCKS, (pid,)).fetchall():
                statement.locks.setdefault(oid, set()).add(mode)

    def close(self) -> None:
        self._side.close()


class Session:
    """One client connection relayed to the database; statements recorded as their ReadyForQuery arrives."""

    def __init__(self, recorder: Recorder, client: socket.socket, upstream_dsn: str) -> None:
        self.recorder, self.client, self.upstream_dsn = recorder, client, upstream_dsn
        self.pid = 0
        self.prepared: dict[str, str] = {}
        self.pipelined = False
        self.current: Statement | None = None
        self.done = threading.Event()

    def run(self) -> None:
        server = None
        try:
            startup = self.startup()
            server = upstream_socket(self.upstream_dsn)
            server.sendall(startup)
            threading.Thread(target=self.from_server, args=(server,), daemon=True).start()
            threading.Thread(target=self.sample, daemon=True).start()
            while True:
                kind, message = read_message(self.client)
                self.from_client(kind, message)
                server.sendall(message)
        except (OSError, ConnectionError):
            pass
        except Exception as exc:  # recorded: the measurement is then incomplete, never silently
            self.recorder.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.done.set()
            for sock in (self.client, server):
                if sock is not None:
                    with suppress(OSError):
                        sock.close()

    def startup(self) -> bytes:
        """The startup packet, after declining TLS/GSS encryption (the hop is loopback)."""
        while True:
            length = struct.unpack("!I", read_exact(self.client, 4))[0]
            body = read_exact(self.client, length - 4)
            code = struct.unpack("!I", body[:4])[0]
            if code in (SSL_REQUEST, GSS_REQUEST):
                self.client.sendall(b"N")
                continue
            if code == CANCEL_REQUEST:
                raise ConnectionError("cancel request")
            return struct.pack("!I", length) + body

    def from_client(self, kind: bytes, message: bytes) -> None:
        body = message[5:]
        sql = None
        if kind == b"Q":
            sql = c_strings(body, 1)[0]
        elif kind == b"P":
            name, sql = c_strings(body, 2)
            self.prepared[name] = sql
        elif kind == b"B":
            sql = self.prepared.get(c_strings(body, 2)[1])
        if sql is not None and self.current is None:
            self.current = Statement(self.pid, sql.strip(), time.monotonic())
        elif sql is not None and self.current is not None and sql.strip() != self.current.sql and not self.pipelined:
            self.pipelined = True  # several statements before one Sync (a pipeline, a JDBC batch): told apart by none
            self.recorder.errors.append(
                f"statements pipelined before one Sync (from {self.current.sql[:60]!r} on): each one's locks and "
                "time are not told apart"
            )

    def from_server(self, server: socket.socket) -> None:
        try:
            while True:
                kind, message = read_message(server)
                if kind == b"K":
                    self.pid = struct.unpack("!I", message[5:9])[0]
                elif kind == b"Z" and self.current is not None:
                    statement, self.current = self.current, None
                    statement.pid, statement.ended = self.pid, time.monotonic()
                    statement.in_transaction = message[5:6] in (b"T", b"E")
                    try:
                        self.recorder.merge(statement, self.pid)  # before the client can go on
                    except Exception as exc:  # the record is incomplete; the migration goes on
                        self.recorder.errors.append(f"reading locks: {type(exc).__name__}: {exc}")
                    self.recorder.statements.append(statement)
                self.client.sendall(message)
        except (OSError, ConnectionError):
            pass
        except Exception as exc:
            self.recorder.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with suppress(OSError):
                self.client.shutdown(socket.SHUT_RDWR)

    def sample(self) -> None:
        """While a statement runs, its session's locks every few milliseconds (a statement outside a transaction
        releases them before its ReadyForQuery)."""
        while not self.done.wait(SAMPLE_S):
            statement = self.current
            if statement is not None and self.pid and time.monotonic() - statement.started > SAMPLE_S:
                with suppress(Exception):
                    self.recorder.merge(statement, self.pid)


@contextmanager
def proxy(dsn: str) -> Iterator[tuple[str, Recorder]]:
    """A DSN that reaches the database at dsn through a recording proxy on loopback, and the recorder (whose errors
    say when the record is incomplete)."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        recorder = Recorder(dsn)
    except Exception:
        listener.close()
        raise
    sessions: list[Session] = []

    def accept() -> None:
        with suppress(OSError):
            while True:
                client, _ = listener.accept()
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK wait per message
                session = Session(recorder, client, dsn)
                sessions.append(session)
                threading.Thread(target=session.run, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield at_address(dsn, "127.0.0.1", listener.getsockname()[1]), recorder
    finally:
        listener.close()
        for session in sessions:
            if not session.done.wait(10):
                recorder.errors.append("a session through the statement capture did not end")
        recorder.close()
        recorder.statements.sort(key=lambda s: s.started)
