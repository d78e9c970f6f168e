"""The system under test: its HTTP API, database, service manager and log; a deployed one is reached with
connect_remote (an embedded one is started by relcheck.target.embedded).

    target = connect_remote(config)
    assert target.health().ok
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from relcheck.core.config import Config
from relcheck.core.errors import TargetError
from relcheck.core.secrets import register, register_dsn, safe_url
from relcheck.target import commands, logs, postgres
from relcheck.target.http import Answer, Http
from relcheck.target.service import SystemdService, UnmanagedService

if TYPE_CHECKING:
    from relcheck.target.embedded import EmbeddedRuntime


class TargetDown(TargetError):
    """The service did not answer at its configured address (or did not start): not verified for the checks that
    needed it, and the definite finding of those that judge its liveness (`target`, `answer`)."""

    def __init__(self, message: str, target: Target, answer: Answer) -> None:
        super().__init__(message)
        self.target, self.answer = target, answer


class Target:
    def __init__(
        self,
        config: Config,
        base_url: str,
        dsn: str,
        admin_dsn: str,
        tokens: dict[str, str],
        service,
        log_file: Path | None,
        mode: str,
    ) -> None:
        self.config = config
        self.base_url = base_url.rstrip("/")
        self.dsn, self.admin_dsn = dsn, admin_dsn or dsn
        self.service = service
        self.log_file = log_file
        self.log = logs.service_log(config.target.service, log_file)
        self.mode = mode
        self.runtime: EmbeddedRuntime | None = None
        self.routes = config.target.routes
        self.http = Http(
            self.base_url, config.target.request_timeout_s, tokens, config.target.auth.header, config.target.auth.scheme
        )
        for value in (dsn, admin_dsn):
            if value:
                register_dsn(value)
        register(*tokens.values())

    def __repr__(self) -> str:
        return f"<Target {self.mode} {self.base_url}>"

    def describe(self) -> dict:
        return {
            "mode": self.mode,
            "base URL": self.base_url,
            "database": safe_url(self.dsn) if self.dsn else "none",
            "service manager": self.service.manager,
            "log": self.log.describe(),
        }

    def known_secrets(self) -> dict[str, str]:
        """Values that must never show up in answers or logs (the API tokens and database passwords) -> their kind."""
        dsns = {"target.admin_dsn": self.admin_dsn, "target.dsn": self.dsn}  # the same password: named for target.dsn
        passwords = {
            password: f"the database password of {key}"
            for key, dsn in dsns.items()
            if "://" in dsn and (password := urlsplit(dsn).password)
        }
        tokens = {token: f"the API token of role {role}" for role, token in self.http.tokens.items()}
        return {value: kind for value, kind in {**passwords, **tokens}.items() if value}

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
    return commands.run(command, env=env, cwd=cwd, timeout=timeout).raise_for(what, TargetError).stdout


def connect_remote(config: Config) -> Target:
    """A deployed service: check it answers and its database accepts our credentials, within bounded time."""
    t = config.target
    service: SystemdService | UnmanagedService
    if t.service.manager == "systemd":
        service = SystemdService(t.service.unit, t.service.command_prefix)
    elif t.service.manager == "none":
        service = UnmanagedService(t.base_url)
    else:
        raise TargetError("target.service.manager: 'process' is only for the embedded target; use 'systemd' or 'none'")
    target = Target(
        config,
        t.base_url,
        t.dsn,
        t.admin_dsn,
        dict(t.auth.tokens),
        service,
        config.resolve(t.service.log_file) if t.service.log_file else None,  # beside the config, like every path
        "remote",
    )
    answer = target.health()
    if answer.status is None:
        raise TargetDown(f"target {t.base_url}: {answer.error}", target, answer)
    return target  # its database is opened by each check that needs it (a refused login: those are not verified)
