"""The system under test: its HTTP API, database, service manager and log, embedded or remote.

    with open_target(config) as target:
        assert target.health().ok
"""

from __future__ import annotations

import json
import secrets as random_secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from . import logs, postgres
from .config import Config
from .environment import command_env
from .errors import TargetError
from .secrets import redact, register, register_dsn, safe_url
from .templates import fill
from .service import ProcessService, SystemdService, UnmanagedService, free_port, wait_until


@dataclass
class Answer:
    """One HTTP exchange; status None means no answer (error says why)."""
    method: str
    url: str
    status: int | None
    headers: dict = field(default_factory=dict)
    text: str = ""
    elapsed_ms: float = 0.0
    error: str = ""

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        outcome = self.error if self.status is None else f"HTTP {self.status}"
        return f"{self.method} {self.url} -> {outcome}"


IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}


class Http:
    """HTTP to the target with a token per role; never raises for HTTP or network errors."""

    def __init__(self, base_url: str, timeout: float, tokens: dict[str, str], header: str, scheme: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.tokens = tokens
        self.header, self.scheme = header, scheme
        self.session = requests.Session()

    def auth_headers(self, role: str | None) -> dict:
        if not role or role == "anonymous":
            return {}
        if role not in self.tokens:
            raise TargetError(f"no token for role {role!r} (set target.auth.tokens.{role})")
        return {self.header: f"{self.scheme} {self.tokens[role]}".strip()}

    def request(self, method: str, path: str, role: str | None = None, json_body=None,
                headers: dict | None = None) -> Answer:
        url = self.base_url + path
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                response = self.session.request(method, url, json=json_body, timeout=self.timeout,
                                                headers={**self.auth_headers(role), **(headers or {})})
                break
            except requests.Timeout:
                return Answer(method, url, None, error=f"no answer within {self.timeout:g}s",
                              elapsed_ms=(time.perf_counter() - started) * 1000)
            except requests.RequestException as exc:
                if attempt == 1 and method in IDEMPOTENT and "Connection aborted" in str(exc):
                    continue        # a kept-alive connection the server had closed: once more on a new one
                return Answer(method, url, None, error=f"unreachable ({_reason(exc)})",
                              elapsed_ms=(time.perf_counter() - started) * 1000)
        if response.status_code >= 500:
            self.session.close()    # servers often drop the connection after a failure: start the next one fresh
        return Answer(method, url, response.status_code, dict(response.headers), response.text,
                      response.elapsed.total_seconds() * 1000)

    def get(self, path: str, role: str | None = None, **kwargs) -> Answer:
        return self.request("GET", path, role, **kwargs)


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


class Target:
    def __init__(self, config: Config, base_url: str, dsn: str, admin_dsn: str, tokens: dict[str, str],
                 service, log_file: Path | None, mode: str) -> None:
        self.config = config
        self.base_url = base_url.rstrip("/")
        self.dsn, self.admin_dsn = dsn, admin_dsn or dsn
        self.service = service
        self.log_file = log_file
        self.log = logs.service_log(config.target.service, log_file)
        self.mode = mode
        self.runtime: EmbeddedRuntime | None = None
        self.routes = config.target.routes
        self.http = Http(self.base_url, config.target.request_timeout_s, tokens, config.target.auth.header,
                         config.target.auth.scheme)
        for value in (dsn, admin_dsn):
            if value:
                register_dsn(value)
        register(*tokens.values())

    def __repr__(self) -> str:
        return f"<Target {self.mode} {self.base_url}>"

    def describe(self) -> dict:
        return {"mode": self.mode, "base URL": self.base_url, "database": safe_url(self.dsn) if self.dsn else "none",
                "service manager": self.service.manager, "log": self.log.describe()}

    def known_secrets(self) -> set[str]:
        """Values that must never show up in answers or logs: the API tokens and database passwords."""
        passwords = {urlsplit(dsn).password for dsn in (self.dsn, self.admin_dsn) if dsn and "://" in dsn}
        return set(self.http.tokens.values()) | {p for p in passwords if p}

    def health(self) -> Answer:
        return self.http.get(self.routes.health)

    def version(self) -> Answer:
        return self.http.get(self.routes.version)

    def database(self, autocommit: bool = True):
        """A read-only session on the live database: the server refuses any write relcheck might attempt."""
        if not self.dsn:
            raise TargetError("no database configured (target.dsn)")
        return postgres.connect(self.dsn, "target database", autocommit=autocommit, read_only=True)


def run_step(command: list[str], env: dict, cwd: Path, what: str, timeout: float) -> str:
    """Run a start-up step; stdout on success, TargetError with its last error line otherwise."""
    try:
        result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise TargetError(f"{what}: command not found: {command[0]}") from None
    except subprocess.TimeoutExpired:
        raise TargetError(f"{what}: did not finish within {timeout:g}s") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise TargetError(f"{what} failed (exit {result.returncode}): {redact(lines[-1]) if lines else 'no output'}")
    return result.stdout


class EmbeddedRuntime:
    """The bundled service on a private PostgreSQL: start everything, hand out a Target, tear everything down."""

    def __init__(self, config: Config, faults: dict | None = None) -> None:
        self.config = config
        self.recipe = config.embedded
        self.faults = self.recipe.faults if faults is None else faults
        self.workdir = Path(tempfile.mkdtemp(prefix="relcheck-embedded-"))
        self.pg = postgres.EmbeddedPostgres(self.workdir)
        self.services: list[ProcessService] = []
        self.dsn = ""
        self.password = ""
        self.tokens: dict[str, str] = {}

    def values(self, faults: dict, **extra) -> dict:
        return {"python": self.recipe.python or sys.executable, "host": "127.0.0.1", "faults": json.dumps(faults),
                **extra}

    def env(self, values: dict, faults: dict) -> dict:
        extra = dict(self.recipe.env)
        if faults:
            extra.update(self.recipe.fault_env)
        return command_env({k: fill(v, values, f"embedded.env.{k}") for k, v in extra.items()})

    def start(self) -> Target:
        """Database, schema, API tokens, then the service; on any failure everything started is stopped."""
        try:
            if not self.config.source.is_dir():
                raise TargetError(f"target.source: {self.config.source} is not a directory")
            self.pg.start()
            self.dsn, self.tokens = self.prepare_database(self.config.source, self.recipe.database)
            return self.spawn(self.faults)
        except BaseException:
            self.stop()
            raise

    def prepare_database(self, source: Path, database: str) -> tuple[str, dict[str, str]]:
        """A database for a service tree: created, migrated with that tree's migrations, with a token per role."""
        if not self.password:
            self.password = random_secrets.token_urlsafe(24)
            dsn = self.pg.create_app_database(database, self.recipe.user, self.password)
        else:
            dsn = self.pg.create_database(database, self.recipe.user, self.password)
        values = self.values(self.faults, dsn=dsn, log_file=str(self.workdir / f"setup-{database}.log"))
        env = self.env(values, self.faults)
        timeout = self.recipe.startup_timeout_s
        run_step([fill(a, values, "embedded.migrate") for a in self.recipe.migrate], env, source, "migrate", timeout)
        commands = {role: [fill(a, {**values, "role": role}, "embedded.provision") for a in self.recipe.provision]
                    for role in self.recipe.roles}
        with ThreadPoolExecutor(max_workers=len(commands) or 1) as pool:      # one process per role, at once
            outputs = {role: pool.submit(run_step, command, env, source, f"provision {role}", timeout)
                       for role, command in commands.items()}
        tokens = {}
        for role, future in outputs.items():
            lines = future.result().strip().splitlines()
            if not lines:
                raise TargetError(f"provision {role}: printed no token")
            tokens[role] = lines[-1].strip()
            register(tokens[role])
        return dsn, tokens

    def spawn(self, faults: dict, healthy: bool = True, source: Path | None = None, dsn: str = "",
              tokens: dict | None = None, database: str = "") -> Target:
        """Start one more instance of the service (by default on the same database, from the same tree) with its
        own faults, port and log. healthy=False only waits for it to answer (for faults that make it unhealthy)."""
        port = free_port()
        name = f"service-{port}"
        dsn = dsn or self.dsn
        values = self.values(faults, dsn=dsn, port=port, log_file=str(self.workdir / f"{name}.log"))
        command = [fill(a, values, "embedded.start") for a in self.recipe.start]
        service = ProcessService(command, self.env(values, faults), source or self.config.source,
                                 self.workdir / f"{name}.out")
        self.services.append(service)
        target = Target(self.config, f"http://127.0.0.1:{port}", dsn,
                        self.pg.admin_dsn(database or self.recipe.database), tokens or self.tokens, service,
                        Path(values["log_file"]), "embedded")
        target.runtime = self
        service.start()
        self.wait_healthy(target, self.recipe.startup_timeout_s, healthy)
        return target

    def spawn_release(self, source: Path, database: str) -> Target:
        """Another release of the service (e.g. the previous one, for an A/B comparison) on its own database."""
        dsn, tokens = self.prepare_database(source, database)
        return self.spawn({}, source=source, dsn=dsn, tokens=tokens, database=database)

    @staticmethod
    def wait_healthy(target: Target, timeout: float, healthy: bool = True) -> None:
        last: list[Answer] = []
        service = target.service

        def ready() -> bool:
            if not service.status().running:
                return True
            last[:] = [target.health()]
            return last[0].status == 200 or (not healthy and last[0].status is not None)

        wait_until(ready, timeout)
        status = service.status()
        if not status.running:
            raise TargetError(f"service {status.detail} during start-up: {redact(service.last_output())}")
        if not last or (last[0].status != 200 and (healthy or last[0].status is None)):
            answer = last[0].describe() if last else "no answer"
            raise TargetError(f"service not healthy within {timeout:g}s ({answer})")

    def stop(self) -> None:
        for service in self.services:
            service.stop()
        self.pg.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def connect_remote(config: Config) -> Target:
    """A deployed service: check it answers and its database accepts our credentials, within bounded time."""
    t = config.target
    if t.service.manager == "systemd":
        service = SystemdService(t.service.unit, t.service.command_prefix)
    elif t.service.manager == "none":
        service = UnmanagedService(t.base_url)
    else:
        raise TargetError("target.service.manager: 'process' is only for the embedded target; "
                          "use 'systemd' or 'none'")
    target = Target(config, t.base_url, t.dsn, t.admin_dsn, dict(t.auth.tokens), service,
                    Path(t.service.log_file) if t.service.log_file else None, "remote")
    answer = target.health()
    if answer.status is None:
        raise TargetError(f"target {t.base_url}: {answer.error}")
    if t.dsn:
        target.database().close()
    return target


@contextmanager
def open_target(config: Config, faults: dict | None = None):
    if config.target.mode == "remote":
        yield connect_remote(config)
        return
    runtime = EmbeddedRuntime(config, faults)
    target = runtime.start()
    try:
        yield target
    finally:
        runtime.stop()
