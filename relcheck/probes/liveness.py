"""The service as it is now: running under its service manager, the version it reports, its health answer and
whether its database answers."""

from __future__ import annotations

from dataclasses import dataclass

from relcheck.core import pointers
from relcheck.core.errors import RelcheckError
from relcheck.target.http import Answer
from relcheck.target.service import ServiceStatus
from relcheck.target.target import Target


@dataclass
class ServiceState:
    status: ServiceStatus
    answer: Answer  # the version source's answer, else the health route's (reachability)
    source: str  # where the version was read, "" when no source is configured
    version: str | None  # None: not read (version_problem says why)
    version_problem: str = ""


def service_state(target: Target) -> ServiceState:
    """The service manager's state and the version from the configured source: a JSON pointer into the version
    route's answer, a response header, or the OpenAPI document's info.version."""
    status, routes, wanted = target.service.status(), target.routes, target.config.target.version
    if wanted.openapi:
        return _from_json(status, target.http.get(routes.openapi), routes.openapi, "/info/version")
    if wanted.header:
        route = routes.version or routes.health
        answer = target.http.get(route)
        value = answer.header(wanted.header) if answer.status is not None else None
        source = f"header {wanted.header} of {route}"
        problem = "" if value else f"{answer.describe()} has no {wanted.header} header"
        return ServiceState(status, answer, source, value or None, problem)
    if routes.version:
        return _from_json(status, target.version(), routes.version, wanted.pointer)
    problem = "no version source configured (target.routes.version, target.version.header or target.version.openapi)"
    return ServiceState(status, target.health(), "", None, problem)


def _from_json(status: ServiceStatus, answer: Answer, route: str, pointer: str) -> ServiceState:
    source = f"{pointer} in {route}'s answer"
    if not answer.ok:
        return ServiceState(status, answer, source, None, answer.describe())
    value = pointers.find(answer.json, pointer)
    if value is None or isinstance(value, dict | list):
        return ServiceState(status, answer, source, None, f"{answer.describe()}: no version at {pointer}")
    return ServiceState(status, answer, source, str(value))


@dataclass
class Health:
    answer: Answer
    database: str | None  # "ok", the error, or None when no database is configured
    database_ok: bool = False


def health(target: Target) -> Health:
    answer = target.health()
    if not target.dsn:
        return Health(answer, None)
    try:
        with target.database() as conn:
            conn.execute("SELECT 1")
    except RelcheckError as exc:
        return Health(answer, str(exc))
    return Health(answer, "ok", True)
