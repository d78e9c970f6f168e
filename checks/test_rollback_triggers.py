"""Rollback Procedure / Rollback Triggers: evaluated at the end of the post-deploy smoke and of monitoring runs,
from the mapped checks that are due by then (this run's result, else the newest earlier complete run of the release).
A trigger that fires fails its item, and the run's decision becomes ROLLBACK (BLOCKED when every failure behind it
is pre-existing); a trigger with a due check that has no judged result is not evaluated."""

import pytest

from relcheck.core import checklist
from relcheck.core.statuses import require
from relcheck.run import triggers

pytestmark = [pytest.mark.rollback, pytest.mark.post_deploy, pytest.mark.monitoring]
TRIGGERS = [item for item in checklist.load().items if item.kind == "trigger"]


@pytest.mark.parametrize(
    "trigger",
    [pytest.param(item.text, marks=pytest.mark.item(item.section, item.text), id=item.text) for item in TRIGGERS],
)
def test_rollback_trigger(trigger, trigger_judgement, relcheck_config, evidence):
    judged = trigger_judgement(trigger)
    previous = relcheck_config.release.previous_version or "the previous release"
    evidence.table(
        f"{trigger}: the checks that fire it",
        ["check", "status", "reason", "from", f"in {previous}"],
        [f.row for f in judged.findings] + [(c, "not yet due", "", "a later phase", "") for c in judged.not_due],
        data=judged.as_data(),
    )
    assert not judged.fired, "fired: " + triggers.describe(judged.fired)
    require(judged.findings, f"none of the checks mapped to {trigger!r} is due in this run")
    require(not judged.not_evaluated, "not evaluated: " + triggers.describe(judged.not_evaluated))
