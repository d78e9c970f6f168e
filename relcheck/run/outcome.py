"""How a check's outcome becomes its status: plain functions (unit-tested without pytest) that the plugin calls.

status_of(passed=False, skipped=False, when="call", error=NotVerified("no data")) -> (NOT_VERIFIED, "no data")
"""

from __future__ import annotations

from datetime import date

import pytest

from relcheck.core.errors import RelcheckError
from relcheck.core.evidence import Evidence
from relcheck.core.statuses import NotVerified, Pending, Status
from relcheck.signing import waivers

REASON_LIMIT = 300  # a reason is one short line; the whole message stays in pytest's longrepr (the report's table)


def first_line(value) -> str:
    text = str(value).strip()
    line = text.splitlines()[0] if text else type(value).__name__
    return line if len(line) <= REASON_LIMIT else line[: REASON_LIMIT - 1] + "…"


def status_of(
    passed: bool,
    skipped: bool,
    when: str,
    error: BaseException | None = None,
    skip_reason: str = "",
    evidence: Evidence | None = None,
) -> tuple[Status, str]:
    """The one rule: FAIL only for an assertion over gathered evidence (a failed `assert`, `pytest.fail`); any other
    error while gathering or checking (a refused login, a missing token or tool, a timeout, a dead worker) is NOT
    VERIFIED with its cause. A passed check with a warning is WARN (with a waiver it relied on, WAIVED)."""
    if passed:
        if evidence and evidence.warnings:
            return Status.WARN, evidence.warnings[0]
        if evidence and evidence.waivers:
            return Status.WAIVED, evidence.waivers[0]
        return Status.PASS, ""
    if skipped:
        return Status.NOT_VERIFIED, f"skipped: {skip_reason}"
    reason = first_line(error) if error is not None else "failed"
    if isinstance(error, Pending):
        return Status.PENDING, reason
    if isinstance(error, NotVerified):
        return Status.NOT_VERIFIED, reason
    if error is None or isinstance(error, AssertionError | pytest.fail.Exception):
        return Status.FAIL, reason
    cause = reason if isinstance(error, RelcheckError) else f"{type(error).__name__}: {reason}"
    return Status.NOT_VERIFIED, f"could not {'set up' if when == 'setup' else 'check'}: {cause}"


def waived(item_waivers: list, item_keys: list[str], reason: str, today: date) -> tuple[Status, str]:
    """A failed item with a valid, signed waiver is WAIVED; an expired or unapproved waiver is named in the
    failure."""
    for key in item_keys:
        waiver = waivers.for_item(item_waivers, key)
        if waiver is None:
            continue
        state = waiver.state(today)
        if state == "valid":
            return (
                Status.WAIVED,
                f"waived by {waiver.id} ({waiver.approver}, until {waiver.expires}): "
                f"{waiver.reason}; the check said: {reason}",
            )
        reason = f"{reason} (waiver {waiver.id}: {state})"
    return Status.FAIL, reason
