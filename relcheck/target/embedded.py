"""The bundled reference service on a private PostgreSQL (pgserver): started, handed out as a Target, torn down;
open_target picks embedded or remote from the config.

    with open_target(config) as target:
        assert target.health().ok
"""

from __future__ import annotations

import json
import secrets as random_secrets
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from relcheck.core.config import Config
from relcheck.core.errors import TargetError
from relcheck.core.secrets import redact, register
from relcheck.core.templates import fill
from relcheck.target import postgres
from relcheck.target.environment import command_env
from relcheck.target.http import Answer
from relcheck.target.service import ProcessService, free_port, wait_until
from relcheck.target.target import Target, TargetDown, connect_remote, run_step


class EmbeddedRuntime:
    """The bundled service on a private PostgreSQL: start everything, hand out a Target, tear everything down."""

    def __init__(self, config: Config, faults: dict | None = None) -> None:
        if config.embedded is None:
            raise TargetError("embedded: section required for the embedded target (relcheck rehearse runs on it)")
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
        return {
            "python": self.config.python(self.recipe.python),
            "host": "127.0.0.1",
            "faults": json.dumps(faults),
            **extra,
        }

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

    def prepare_database(self, tree: Path, database: str) -> tuple[str, dict[str, str]]:
        """A database for a service tree: created, migrated with that tree's migrations, with a token per role."""
        if not self.password:
            self.password = random_secrets.token_urlsafe(24)
            dsn = self.pg.create_app_database(database, self.recipe.user, self.password)
        else:
            dsn = self.pg.create_database(database, self.recipe.user, self.password)
        values = self.values(self.faults, dsn=dsn, log_file=str(self.workdir / f"setup-{database}.log"))
        env = self.env(values, self.faults)
        timeout, source = self.recipe.startup_timeout_s, self.config.in_app(tree)
        run_step([fill(a, values, "embedded.migrate") for a in self.recipe.migrate], env, source, "migrate", timeout)
        commands = {
            role: [fill(a, {**values, "role": role}, "embedded.provision") for a in self.recipe.provision]
            for role in self.recipe.roles
        }
        with ThreadPoolExecutor(max_workers=len(commands) or 1) as pool:  # one process per role, at once
            outputs = {
                role: pool.submit(run_step, command, env, source, f"provision {role}", timeout)
                for role, command in commands.items()
            }
        tokens = {}
        for role, future in outputs.items():
            lines = future.result().strip().splitlines()
            if not lines:
                raise TargetError(f"provision {role}: printed no token")
            tokens[role] = lines[-1].strip()
            register(tokens[role])
        return dsn, tokens

    def spawn(
        self,
        faults: dict,
        healthy: bool = True,
        source: Path | None = None,
        dsn: str = "",
        tokens: dict | None = None,
        database: str = "",
    ) -> Target:
        """Start one more instance of the service (by default on the same database, from the same tree) with its
        own faults, port and log. healthy=False only waits for it to answer (for faults that make it unhealthy)."""
        port = free_port()
        name = f"service-{port}"
        dsn = dsn or self.dsn
        values = self.values(faults, dsn=dsn, port=port, log_file=str(self.workdir / f"{name}.log"))
        command = [fill(a, values, "embedded.start") for a in self.recipe.start]
        service = ProcessService(
            command,
            self.env(values, faults),
            self.config.in_app(source or self.config.source),
            self.workdir / f"{name}.out",
        )
        self.services.append(service)
        target = Target(
            self.config,
            f"http://127.0.0.1:{port}",
            dsn,
            self.pg.admin_dsn(database or self.recipe.database),
            tokens or self.tokens,
            service,
            Path(values["log_file"]),
            "embedded",
        )
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
            why = f"service {status.detail} during start-up: {redact(service.last_output())}"
            raise TargetDown(why, target, Answer("GET", target.http.base_url + target.routes.health, None, error=why))
        if not last or (last[0].status != 200 and (healthy or last[0].status is None)):
            health_url = target.http.base_url + target.routes.health
            answer = last[0] if last else Answer("GET", health_url, None, error="no answer")
            raise TargetDown(f"service not healthy within {timeout:g}s ({answer.describe()})", target, answer)

    def stop(self) -> None:
        for service in self.services:
            service.stop()
        self.pg.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


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
