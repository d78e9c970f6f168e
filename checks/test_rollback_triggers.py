"""Rollback Procedure / Rollback Triggers: evaluated at the end of the post-deploy smoke (and of monitoring runs).
A trigger that fires fails its item, and the run's decision becomes ROLLBACK."""

import pytest

from relcheck import checklist, records, triggers
from relcheck.verdict import require

pytestmark = [pytest.mark.rollback, pytest.mark.post_deploy]
TRIGGERS = [item for item in checklist.load().items if item.kind == "trigger"]


@pytest.mark.parametrize("trigger", [pytest.param(item.text, marks=pytest.mark.item(item.section, item.text),
                                                  id=item.text) for item in TRIGGERS])
def test_rollback_trigger(trigger, relcheck_config, relcheck_run, evidence):
    mapped = relcheck_config.rollback.triggers.get(trigger, [])
    require(mapped, f"no checks mapped to {trigger!r} (rollback.triggers)")
    found = triggers.evaluate(mapped, relcheck_run.results_by_test(), records.manifests(relcheck_config))
    evidence.table(f"{trigger}: the checks that fire it", ["check", "status", "reason", "from"],
                   [(e.check, e.status, e.reason, e.where) for e in found])
    hits = triggers.fired(found)
    assert not hits, "fired: " + "; ".join(f"{e.check} {e.status}" + (f" ({e.reason})" if e.reason else "")
                                          for e in hits)
    evaluated = triggers.evaluated(found)
    require(evaluated, "none of its checks has a result for this release yet: " + ", ".join(mapped))
    if len(evaluated) < len(found):
        evidence.warn("decided without " + ", ".join(f"{e.check} ({e.status})" for e in found if e not in evaluated))
