"""The access matrix: each configured request, made as each role, must get the expected status."""

from __future__ import annotations

from dataclasses import dataclass

from relcheck.target.request_specs import base_values, run_setup, send
from relcheck.target.target import Target


@dataclass
class Probe:
    method: str
    path: str
    role: str
    expected: int
    got: int | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.got == self.expected


def exercise(target: Target, setup, rules) -> list[Probe]:
    values = run_setup(target, setup, base_values())
    probes = []
    for rule in rules:
        for role, expected in rule.expect.items():
            answer = send(target, rule, values, role=role)
            probes.append(
                Probe(
                    rule.method.upper(),
                    rule.path,
                    role,
                    expected,
                    answer.status,
                    answer.error or (answer.json or {}).get("error", {}).get("code", "")
                    if isinstance(answer.json, dict)
                    else answer.error,
                )
            )
    return probes
