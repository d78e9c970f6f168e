"""Rollback Procedure / Rollback Triggers: evaluated at the end of the post-deploy smoke and of monitoring runs,
from the mapped checks that are due by then (this run's result, else the newest earlier run of the release).
A trigger that fires fails its item, and the run's decision becomes ROLLBACK."""

import pytest

from relcheck.core import checklist, records
from relcheck.core.statuses import require
from relcheck.run import triggers

pytestmark = [pytest.mark.rollback, pytest.mark.post_deploy, pytest.mark.monitoring]
TRIGGERS = [item for item in checklist.load().items if item.kind == "trigger"]


@pytest.mark.parametrize(
    "trigger",
    [pytest.param(item.text, marks=pytest.mark.item(item.section, item.text), id=item.text) for item in TRIGGERS],
)
def test_rollback_trigger(trigger, relcheck_config, relcheck_run, evidence):
    mapped = relcheck_config.rollback.triggers.get(trigger, [])
    require(mapped, f"no checks mapped to {trigger!r} (rollback.triggers)")
    unknown = [check for check in mapped if check not in relcheck_run.phases_of]
    require(not unknown, f"rollback.triggers names no such check: {', '.join(unknown)}")
    due = [check for check in mapped if relcheck_run.due(check)]
    found = triggers.evaluate(due, relcheck_run.results_by_test(), records.manifests(relcheck_config))
    previous = records.manifests_in(records.previous_release_dir(relcheck_config))
    before = {e.check: triggers.in_previous_release(e.check, previous) for e in found}
    evidence.table(
        f"{trigger}: the checks that fire it",
        [
            "check",
            "status",
            "reason",
            "from",
            f"in {relcheck_config.release.previous_version or 'the previous release'}",
        ],
        [(e.check, e.status, e.reason, e.where, before[e.check]) for e in found]
        + [(check, "not yet due", "", "a later phase", "") for check in mapped if check not in due],
    )
    hits = triggers.fired(found)
    assert not hits, "fired: " + "; ".join(
        f"{e.check} {e.status}"
        + (f" ({e.reason})" if e.reason else "")
        + (" (pre-existing: fails in the previous release too)" if before[e.check] == "fail" else "")
        for e in hits
    )
    unverified = [f for f in found if f.status in ("not verified", "pending attestation")]
    require(not unverified, "not evaluated: " + "; ".join(f"{f.check} {f.status} ({f.reason})" for f in unverified))
    evaluated = triggers.evaluated(found)
    require(evaluated, "none of its checks has a result for this release yet: " + ", ".join(mapped))
    if len(evaluated) < len(found):
        evidence.warn("decided without " + ", ".join(f"{e.check} ({e.status})" for e in found if e not in evaluated))
