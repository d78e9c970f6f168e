"""The regression catalogue's --quick set (python -m bench.regressions --quick): each release N+1 with one
regression is stopped by its own item, the clean N+1 passes with no false alarm."""

import pytest

from bench.regressions.__main__ import measure
from bench.regressions.catalogue import QUICK, REGRESSIONS


@pytest.mark.slow
def test_each_quick_regression_is_stopped_by_its_item_and_the_clean_release_passes(tmp_path):
    found = measure(QUICK, tmp_path, tmp_path / "reports")
    statuses = {(row["name"], row["phase"]): row["status"] for row in found["rows"]}
    phases = {r.phase for r in REGRESSIONS if r.name in QUICK}
    assert statuses == {("clean N+1", p): "passed" for p in phases} | {
        (r.name, r.phase): "caught" for r in REGRESSIONS if r.name in QUICK
    }, found["table"]
    assert (found["detection_rate"], found["false_alarms"]) == (1.0, 0)
