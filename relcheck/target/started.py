"""The target's service started by relcheck from its code (target.source) on a scratch database relcheck creates and
drops (quality.api.start): the one remote place where the conformance run may send every method.

    with started.on_scratch(target, config.quality.api) as instance:
        run(plan(instance.base_url, writes=True), ...)
    # stopped and its scratch database dropped here, also on failure and Ctrl-C
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import urlsplit

from relcheck.core.config import ApiConformance
from relcheck.core.errors import TargetError
from relcheck.core.secrets import register
from relcheck.core.templates import fill
from relcheck.target.embedded import EmbeddedRuntime
from relcheck.target.environment import command_env, refuse_live
from relcheck.target.scratch import DsnParts, scratch_database
from relcheck.target.service import ProcessService, free_port
from relcheck.target.target import Target, run_step


@dataclass(frozen=True)
class Started:
    target: Target  # the started instance (its base URL, its scratch DSN, the token it was provisioned)
    scratch: str  # the scratch database's name
    token: str  # for quality.api.role: provisioned on the scratch database, else the live one's

    @property
    def base_url(self) -> str:
        return self.target.base_url


@contextmanager
def on_scratch(target: Target, api: ApiConformance) -> Iterator[Started]:
    """quality.api.start's service on a fresh scratch database: prepared (start_prepare), a token provisioned
    (start_provision), started on a free port and healthy at target.routes.health within start_timeout_s;
    TargetError naming the step that failed. Never pointed at the live database (ScratchRefused)."""
    config = target.config
    with scratch_database(target, "api") as scratch, TemporaryDirectory(prefix="relcheck-api-") as workdir:
        port = free_port()
        values = {"python": config.python(), "host": "127.0.0.1", "port": str(port)}
        values.update(scratch.parts.placeholders("scratch"))
        command = [fill(a, values, "quality.api.start") for a in api.start]
        env = {k: fill(v, values, f"quality.api.start_env.{k}") for k, v in api.start_env.items()}
        steps = [
            [fill(a, values, f"quality.api.start_prepare.{i}") for a in s] for i, s in enumerate(api.start_prepare)
        ]
        provision = [fill(a, {**values, "role": api.role}, "quality.api.start_provision") for a in api.start_provision]
        live = DsnParts.of(target.dsn) if target.dsn else None
        for step in [command, *steps, provision]:
            if live:
                refuse_live(env, step, live, "quality.api.start")
        cwd, timeout = config.in_app(config.source), api.start_timeout_s
        for i, step in enumerate(steps):
            run_step(step, command_env(env), cwd, f"quality.api.start_prepare[{i}]", timeout)
        token = target.http.tokens.get(api.role, "") if api.role else ""
        if provision:
            printed = run_step(provision, command_env(env), cwd, "quality.api.start_provision", timeout).splitlines()
            if not printed or not printed[-1].strip():
                raise TargetError("quality.api.start_provision: printed no token")
            token = printed[-1].strip()
            register(token)
        service = ProcessService(command, command_env(env), cwd, Path(workdir) / "service.out")
        base_url = f"http://127.0.0.1:{port}{urlsplit(target.base_url).path}"
        instance = Target(
            config, base_url, scratch.dsn, "", {api.role: token} if token else {}, service, None, "scratch"
        )
        service.start()
        try:
            EmbeddedRuntime.wait_healthy(instance, timeout)
            yield Started(instance, scratch.name, token)
        finally:
            service.stop()
