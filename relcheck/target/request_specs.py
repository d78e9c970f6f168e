"""Configured HTTP requests (method, path, role, body) with placeholders filled from earlier answers:

setup:  POST /v1/kundli as operator, capture {chart_id} = response["id"]
then:   GET /v1/kundli/{chart_id} as viewer
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
import time
from dataclasses import dataclass

from relcheck.core.errors import TargetError
from relcheck.core.templates import fill
from relcheck.target.http import Answer
from relcheck.target.target import Target


def fresh_date() -> str:
    """A calendar date between 1850 and 2049 drawn at random (YYYY-MM-DD)."""
    return (datetime.date(1850, 1, 1) + datetime.timedelta(days=secrets.randbelow(200 * 365))).isoformat()


def base_values(window_date: str = "") -> dict:
    """Placeholders always available: {unique} differs on every request sequence (for names that must be new);
    {window_date} is one date for every round of a monitoring window's synthetic traffic and another in the next
    window (data a cache misses once per window, then hits), a fresh one in any other sequence."""
    return {"unique": f"{int(time.time() * 1000) % 10**10}", "window_date": window_date or fresh_date()}


def send(target: Target, spec, values: dict, role: str | None = None) -> Answer:
    return target.http.request(
        spec.method.upper(),
        fill(spec.path, values),
        role or spec.role,
        json_body=fill(spec.body, values) if spec.body is not None else None,
        headers=fill(dict(spec.headers), values),
    )


def run_setup(target: Target, steps, values: dict) -> dict:
    """Run setup requests in order, capturing JSON fields into the placeholder values."""
    values = dict(values)
    for step in steps:
        answer = send(target, step, values)
        if not answer.ok:
            raise TargetError(f"setup request failed: {answer.describe()}")
        body = answer.json or {}
        for name, field in step.capture.items():
            if field not in body:
                raise TargetError(f"setup {step.method} {step.path}: no field {field!r} in the answer")
            values[name] = body[field]
    return values


@dataclass
class Walked:
    """One request of a walked path: what was sent, what was expected and what came back."""

    name: str
    request: str
    role: str
    expected: int
    got: int | str  # the status, or the error when nothing answered
    missing: list[str] = dataclasses.field(default_factory=list)  # required fields the answer lacks

    @property
    def ok(self) -> bool:
        return self.got == self.expected and not self.missing

    @property
    def problem(self) -> str:
        return f"{self.name}: expected {self.expected}, got {self.request} -> {self.got}" + (
            f", missing {', '.join(self.missing)}" if self.missing else ""
        )


def walk(target: Target, steps, window_date: str = "") -> list[Walked]:
    """Send each step in order, capturing fields for the next ones; stop at the first step that is not as expected."""
    values, walked = base_values(window_date), []
    for step in steps:
        answer = send(target, step, values)
        body = answer.json if isinstance(answer.json, dict) else {}
        missing = [f for f in step.require_fields if f not in body]
        got = answer.status if answer.status is not None else answer.error
        walked.append(
            Walked(step.name, f"{step.method} {fill(step.path, values)}", step.role, step.expect, got, missing)
        )
        if not walked[-1].ok:
            break
        values.update({name: body[field] for name, field in step.capture.items() if field in body})
    return walked


def write_repeatedly(target: Target, spec, rows: int) -> str:
    """The write request `rows` times ({n} = 0, 1, ...), each answered with success; what it wrote."""
    for n in range(rows):
        answer = send(target, spec, {**base_values(), "n": str(n)})
        if not answer.ok:
            raise TargetError(f"seeding failed: {answer.describe()}")
    return f"{rows} writes of {spec.path}"
