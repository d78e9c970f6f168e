"""The service as it is now: running under its service manager, the version it reports, its health answer and
whether its database answers."""

from __future__ import annotations

from dataclasses import dataclass

from relcheck.core.errors import RelcheckError
from relcheck.target.http import Answer
from relcheck.target.service import ServiceStatus
from relcheck.target.target import Target


@dataclass
class ServiceState:
    status: ServiceStatus
    version_answer: Answer
    version: str | None  # None: the answer named no version


def service_state(target: Target) -> ServiceState:
    status, answer = target.service.status(), target.version()
    body = answer.json if isinstance(answer.json, dict) else {}
    version = body.get("version")
    return ServiceState(status, answer, str(version) if version is not None else None)


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
