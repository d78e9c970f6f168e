"""Rollback triggers: each trigger of the checklist fires from concrete check results (config rollback.triggers),
taken from this run or, failing that, the newest earlier complete run of the same release.

A trigger fires when a mapped check failed; the failure is pre-existing (rolling back would not fix it) when the
check marked it so (its findings are all in the previous release: Evidence.change) or it failed in the previous
release too. A trigger is evaluated only when every mapped check that is due has a pass, warn, waived or fail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

JUDGED = ("pass", "warn", "waived", "fail")


@dataclass
class Finding:
    check: str
    status: str  # the check's status, or "no result"
    reason: str
    where: str
    previous: str = "no result"  # its status in the previous release
    pre_existing: str = ""  # why its failure is not this release's ("" when it is, or it did not fail)

    @property
    def described(self) -> str:
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.check} {self.status}{reason}" + (f" [{self.pre_existing}]" if self.pre_existing else "")

    @property
    def row(self) -> tuple:
        return (self.check, self.status, self.reason, self.where, self.previous)


@dataclass
class Judgement:
    """What a trigger's mapped checks say: the findings, those that fired, those that left it not evaluated."""

    findings: list[Finding]
    not_due: list[str]

    @property
    def fired(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    @property
    def not_evaluated(self) -> list[Finding]:
        return [f for f in self.findings if f.status not in JUDGED]

    def as_data(self) -> list[dict]:
        """The findings as the manifest's evidence keeps them: what the run's decision is made from."""
        return [asdict(f) for f in self.findings]


def test_name(nodeid: str) -> str:
    return nodeid.split("::")[-1]


def newest_result(check: str, manifests: list[dict]) -> tuple[dict, dict] | None:
    """(manifest, check entry) of the newest run in manifests (newest first) that ran the check."""
    return next(
        ((m, c) for m in manifests for item in m["items"] for c in item["checks"] if test_name(c["test"]) == check),
        None,
    )


def evaluate(
    mapped: list[str],
    due: list[str],
    this_run: dict[str, dict],
    history: list[dict],
    previous: list[dict],
    previous_version: str = "",
    phases_of: dict[str, set[str]] | None = None,
) -> Judgement:
    """this_run: test name -> {"status", "reason", "pre_existing"}; history: complete runs of this release, previous:
    of the previous release, both newest first; phases_of: each check's phases (to say which run is missing)."""
    found = []
    for check in due:
        result = this_run.get(check)
        if result is not None:
            finding = Finding(check, result["status"], result["reason"], "this run", "", result.get("pre_existing", ""))
        elif (earlier := newest_result(check, history)) is not None:
            manifest, entry = earlier
            where = f"{manifest['run']['label']} run of {manifest['run']['finished']}"
            finding = Finding(check, entry["status"], entry["reason"], where, "", entry.get("pre_existing", ""))
        else:
            finding = Finding(check, "no result", f"no complete run yet: run {phase_to_run(check, phases_of)}", "")
        before = newest_result(check, previous)
        finding.previous = before[1]["status"] if before else "no result"
        if finding.status == "fail" and not finding.pre_existing and finding.previous == "fail":
            finding.pre_existing = f"fails in {previous_version or 'the previous release'} too"
        found.append(finding)
    return Judgement(found, [check for check in mapped if check not in due])


def phase_to_run(check: str, phases_of: dict[str, set[str]] | None) -> str:
    phases = (phases_of or {}).get(check, set())
    phase = "pre_release" if "pre_release" in phases else min(phases, default="")
    return f"pytest -m {phase} for this release first" if phase else "its phase for this release first"


def describe(findings: list[Finding]) -> str:
    return "; ".join(
        f"{f.check} {f.status}"
        + (f" ({f.reason})" if f.reason else "")
        + (f" [{f.pre_existing}]" * bool(f.pre_existing))
        for f in findings
    )
