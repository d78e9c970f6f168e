"""Locust scenarios written from the service's documented safe operations: GETs without parameters that answered
init's anonymous request with success (written only when the user asks, `relcheck init --write-load`)."""

from __future__ import annotations

from pathlib import Path

from relcheck.discovery.service import INFRASTRUCTURE, ServiceFound, looks_like_health

SERVICE = '''"""Load scenario for {title}, written by `relcheck init` from its OpenAPI: its GET operations without
parameters that answered, as the anonymous user (or the first role with a token). Edit freely: add the requests
that matter.

locust -f service.py --headless -u 2 -t 10s --host {base_url}
"""

from locust import FastHttpUser, between, task

from relcheck.scenario import TOKENS, auth, pacing

ROLE = next(iter(TOKENS), "anonymous")


class ServiceUser(FastHttpUser):
    wait_time = pacing(between(0.2, 0.6))
{tasks}'''

STRESS = '''"""Stress scenario for {title}, written by `relcheck init`: the users of service.py without think
time, stepped up by relcheck's step shape (RELCHECK_STRESS_* from performance.stress).
"""

from locust import constant
from service import ServiceUser

from relcheck.probes.locustrec import StepLoadShape  # noqa: F401  (the step ramp)
from relcheck.scenario import pacing


class StressUser(ServiceUser):
    wait_time = pacing(constant(0))
'''

TASK = """
    @task
    def get_{n}(self) -> None:
        self.client.get({path!r}, headers=auth(ROLE), name={path!r})
"""


def safe_routes(service: ServiceFound) -> list[str]:
    """The GETs without parameters that answered an anonymous request with success, but the health, metrics and
    API-document routes (not traffic users make); the health route when nothing else is left."""
    seen = {service.health_route, service.openapi_route, service.metrics.route if service.metrics else ""}
    routes = [
        o.path
        for o in service.operations
        if o.method == "GET" and o.status and 200 <= o.status < 300
        and o.path not in {*seen, *INFRASTRUCTURE} and not looks_like_health(o.path)
    ]  # fmt: skip
    return routes or [service.health_route or "/"]


def write(service: ServiceFound, directory: Path) -> dict[str, str]:
    """load/service.py (load and smoke) and load/stress.py; their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    title = service.title or service.base_url
    tasks = "".join(TASK.format(n=n, path=route) for n, route in enumerate(safe_routes(service)))
    files = {"scenario": directory / "service.py", "stress": directory / "stress.py"}
    files["scenario"].write_text(SERVICE.format(title=title, base_url=service.base_url, tasks=tasks))
    files["stress"].write_text(STRESS.format(title=title))
    return {name: str(path) for name, path in files.items()}
