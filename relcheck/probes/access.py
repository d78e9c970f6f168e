"""The access matrix: each configured request, made as each role, must get the expected status (the status code is
judged; the start of the answer is kept as evidence, whatever shape the service's error bodies have)."""

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

    @property
    def judged(self) -> bool:
        """An answer that says something about access: a server error or no answer made no access decision (the
        error rate and critical paths judge those), unless it is what the rule expects."""
        return self.ok or (self.got is not None and self.got < 500)


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
                    answer.error or " ".join(answer.text.split())[:120],  # evidence only: the status is judged
                )
            )
    return probes
