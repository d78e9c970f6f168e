"""Rollback triggers: each trigger of the checklist fires from concrete check results (config rollback.triggers),
taken from this run or, failing that, the newest earlier run of the same release."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Finding:
    check: str
    status: str  # the check's status, or "no result"
    reason: str
    where: str


def test_name(nodeid: str) -> str:
    return nodeid.split("::")[-1]


def evaluate(mapped: list[str], this_run: dict[str, tuple[str, str]], history: list[dict]) -> list[Finding]:
    """this_run: test name -> (status, reason); history: manifests of the release, newest first."""
    found = []
    for check in mapped:
        if check in this_run:
            status, reason = this_run[check]
            found.append(Finding(check, status, reason, "this run"))
            continue
        earlier = next(
            ((m, c) for m in history for item in m["items"] for c in item["checks"] if test_name(c["test"]) == check),
            None,
        )
        if earlier:
            manifest, result = earlier
            found.append(
                Finding(
                    check,
                    result["status"],
                    result["reason"],
                    f"{manifest['run']['label']} run of {manifest['run']['finished']}",
                )
            )
        else:
            found.append(Finding(check, "no result", "", "not run for this release"))
    return found


def in_previous_release(check: str, previous: list[dict]) -> str:
    """The check's status in the newest run of the previous release that ran it ("no result" when none did): a
    failure it shares is pre-existing, and rolling back to it would not fix it."""
    return next(
        (c["status"] for m in previous for item in m["items"] for c in item["checks"] if test_name(c["test"]) == check),
        "no result",
    )


def fired(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "fail"]


def evaluated(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status in ("pass", "warn", "waived", "fail")]
