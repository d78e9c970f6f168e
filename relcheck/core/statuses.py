"""Item statuses, and how a check reports anything other than pass or fail.

A check passes by returning, fails by a failed assertion, and otherwise raises NotVerified (no evidence source,
no data, tool did not run, inconclusive) or Pending (waiting for a person's attestation). Only PASS counts as pass.
"""

from __future__ import annotations

from enum import Enum, StrEnum


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    WAIVED = "waived"
    FAIL = "fail"
    NOT_VERIFIED = "not verified"
    PENDING = "pending attestation"
    NOT_COVERED = "not covered"
    NOT_RUN = "not run"

    @property
    def acceptable(self) -> bool:
        """Statuses that let a release go ahead (a warning or a valid waiver is visible but does not block)."""
        return self in (Status.PASS, Status.WARN, Status.WAIVED)


# Worst first: an item with several checks takes the worst of their statuses.
SEVERITY = [
    Status.FAIL,
    Status.NOT_VERIFIED,
    Status.PENDING,
    Status.NOT_COVERED,
    Status.WARN,
    Status.WAIVED,
    Status.PASS,
    Status.NOT_RUN,
]


class Verdict(StrEnum):
    """A run's verdict (decided in relcheck/run/results.py): READY or BLOCKED before a deploy, PROCEED, BLOCKED or
    ROLLBACK after one (the rollback triggers), PARTIAL for a run that is not complete."""

    READY = "READY"
    BLOCKED = "BLOCKED"
    PROCEED = "PROCEED"
    ROLLBACK = "ROLLBACK"
    PARTIAL = "PARTIAL"


GO = frozenset({Verdict.READY, Verdict.PROCEED})  # the verdicts that let a release go on (and the roles may sign)


def worst(statuses) -> Status:
    statuses = list(statuses)
    return min(statuses, key=SEVERITY.index) if statuses else Status.NOT_COVERED


class NotVerified(Exception):
    """The check could not decide: no evidence source configured, no data, or a tool did not run."""


class Inconclusive(NotVerified):
    """The measurement cannot be trusted (e.g. the load generator was saturated)."""


class Pending(Exception):
    """Only a person can confirm this item, and nobody has attested it yet."""


def require(condition, reason: str) -> None:
    """Not verified unless condition holds: `require(run.samples, "no latency samples")`."""
    if not condition:
        raise NotVerified(reason)


def trust(distrust: str) -> None:
    """Inconclusive when there is a reason not to trust the measurement: `trust(run.distrust(limit))`."""
    if distrust:
        raise Inconclusive(distrust)
