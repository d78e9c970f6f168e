"""Results of a run: each checklist item's status from its checks, the overall verdict, the manifest."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata

from relcheck.core.checklist import Checklist, Item
from relcheck.core.statuses import Status, Verdict, worst
from relcheck.target import commands

MANIFEST_FORMAT = "relcheck-manifest/1"
TOOLS = (
    "relcheck",
    "pytest",
    "pytest-html",
    "requests",
    "psycopg",
    "locust",
    "bandit",
    "coverage",
    "pgserver",
    "scipy",
    "hdrhistogram",
    "sshsig",
    "securesystemslib",
)


@dataclass
class CheckResult:
    nodeid: str
    status: Status
    reason: str
    duration_s: float
    phases: list[str]
    evidence: list[dict] = field(default_factory=list)
    evidence_digest: str = ""
    pre_existing: str = ""  # a failure the previous release has too (Evidence.change): why rolling back won't fix it


@dataclass
class ItemResult:
    item: Item
    status: Status
    checks: list[CheckResult]

    @property
    def reason(self) -> str:
        failing = [c for c in self.checks if c.status == self.status and c.reason]
        return failing[0].reason if failing else ""


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_sha(repo) -> str:
    result = commands.run(["git", "-C", str(repo), "rev-parse", "HEAD"], timeout=10)
    return result.stdout.strip() if result.ok else ""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def item_results(checklist: Checklist, checks: dict[str, list[CheckResult]], covered: set[str]) -> list[ItemResult]:
    """checks: item key -> results of its checks in this run; covered: keys of items that have any check."""
    results = []
    for item in checklist.items:
        ran = checks.get(item.key, [])
        if ran:
            status = worst(c.status for c in ran)
        else:
            status = Status.NOT_RUN if item.key in covered else Status.NOT_COVERED
        results.append(ItemResult(item, status, ran))
    return results


def verdict(results: list[ItemResult], run_phases: set[str], interrupted: bool = False) -> tuple[Verdict, list[str]]:
    """READY when every item this run is responsible for is acceptable; BLOCKED otherwise, with reasons."""
    considered = [r for r in results if r.status != Status.NOT_RUN and (r.checks or r.item.phase in run_phases)]
    blocking = [r for r in considered if not r.status.acceptable]
    reasons = [
        f"{r.item.section.split(' / ')[-1]}: {r.item.text}: {r.status.value}" + (f" ({r.reason})" if r.reason else "")
        for r in blocking
    ]
    if interrupted:
        reasons.insert(0, "the run was interrupted before every check ran")
    if not any(r.checks for r in results):
        reasons.insert(0, "no check ran")
    return (Verdict.BLOCKED if reasons else Verdict.READY), reasons


def decision(results: list[ItemResult]) -> dict | None:
    """After post-deploy or monitoring checks: ROLLBACK when a rollback trigger fired for a failure this release
    introduced, PROCEED when every trigger was evaluated and none fired, BLOCKED when one could not be or fired only
    for failures the previous release shares (rolling back would not fix them); None when this run evaluated no
    trigger. As data: {"name", "fired": [{"trigger", "checks", "reason", "pre_existing"}], "not_evaluated":
    [{"trigger", "reason"}], "reasons"}."""
    triggers = [r for r in results if r.item.kind == "trigger" and r.checks]
    if not triggers:
        return None
    fired: list[dict] = []
    for r in (r for r in triggers if r.status == Status.FAIL):
        firing = [f for c in r.checks for block in c.evidence for f in block.get("data", []) if f["status"] == "fail"]
        fired.append(
            {
                "trigger": r.item.text,
                "checks": [f["check"] for f in firing],
                "reason": r.reason,
                "pre_existing": bool(firing) and all(f["pre_existing"] for f in firing),
            }
        )
    unknown = [
        {"trigger": r.item.text, "reason": r.reason}
        for r in triggers
        if r.status != Status.FAIL and not r.status.acceptable
    ]
    introduced = [f for f in fired if not f["pre_existing"]]
    name = Verdict.ROLLBACK if introduced else Verdict.BLOCKED if fired or unknown else Verdict.PROCEED
    reasons = (
        [f"rollback trigger fired: {f['trigger']} ({f['reason']})" for f in introduced]
        + [
            f"pre-existing failure, rolling back would not fix it: {f['trigger']} ({f['reason']})"
            for f in fired
            if f["pre_existing"]
        ]
        + [f"rollback trigger not evaluated: {u['trigger']} ({u['reason']})" for u in unknown]
    )
    return {"name": name, "fired": fired, "not_evaluated": unknown, "reasons": reasons}


def final_verdict(
    results: list[ItemResult],
    run_phases: set[str],
    interrupted: bool,
    tree_problem: str,
    partial: list[str],
) -> tuple[Verdict, list[str], dict | None]:
    """The run's verdict, in one place: the items' verdict, then the trigger decision (a run that evaluated triggers
    PROCEEDs only when its items allow it), then what was tested must be what is released (`tree_problem`), then a
    run that is not complete is PARTIAL — unless a trigger fired (that is measured; anything else needs the whole
    run). Returns the verdict, its reasons and the trigger decision."""
    name, reasons = verdict(results, run_phases, interrupted)
    trigger_decision = decision(results)
    if trigger_decision:
        fired = Verdict(trigger_decision["name"])
        name = Verdict.BLOCKED if fired == Verdict.PROCEED and name == Verdict.BLOCKED else fired
        reasons = trigger_decision["reasons"] + reasons
    if tree_problem:
        name, reasons = (Verdict.BLOCKED if name == Verdict.READY else name), [tree_problem] + reasons
    if partial and name != Verdict.ROLLBACK:
        name, reasons = Verdict.PARTIAL, partial + reasons
    return name, reasons, trigger_decision


def counts(results: list[ItemResult]) -> dict[str, int]:
    tally = {status.value: 0 for status in Status}
    for result in results:
        tally[result.status.value] += 1
    return tally


def manifest(
    header: dict, results: list[ItemResult], verdict_name: str, reasons: list[str], trigger_decision: dict | None = None
) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        **header,
        "verdict": verdict_name,
        "verdict_reasons": reasons,
        "decision": {k: v for k, v in trigger_decision.items() if k != "reasons"} if trigger_decision else None,
        "counts": counts(results),
        "items": [
            {
                "section": r.item.section,
                "item": r.item.text,
                "kind": r.item.kind,
                "phase": r.item.phase,
                "status": r.status.value,
                "checks": [
                    {
                        "test": c.nodeid,
                        "status": c.status.value,
                        "reason": c.reason,
                        "duration_s": round(c.duration_s, 3),
                        "phases": c.phases,
                        "evidence_sha256": c.evidence_digest,
                        "pre_existing": c.pre_existing,
                    }
                    for c in r.checks
                ],
            }
            for r in results
        ],
    }


def from_manifest(manifest: dict, evidence: dict[str, list[dict]]) -> list[ItemResult]:
    """The item results a manifest records (with their evidence): what the report is rendered from."""
    results = []
    for entry in manifest["items"]:
        checks = [
            CheckResult(
                c["test"],
                Status(c["status"]),
                c["reason"],
                c["duration_s"],
                c["phases"],
                evidence.get(c["test"], []),
                c["evidence_sha256"],
                c.get("pre_existing", ""),
            )
            for c in entry["checks"]
        ]
        results.append(
            ItemResult(Item(entry["section"], entry["item"], entry["kind"]), Status(entry["status"]), checks)
        )
    return results
