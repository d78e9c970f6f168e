"""The regression catalogue (python -m bench.regressions) on two of its classes: each release N+1 with one
regression is stopped by its own item, the clean N+1 passes with no false alarm."""

import pytest

from bench.regressions.__main__ import measure


@pytest.mark.slow
def test_each_regression_is_stopped_by_its_item_and_the_clean_release_passes(tmp_path):
    found = measure(["release notes missing", "endpoint no longer requires auth"], tmp_path, tmp_path / "reports")
    statuses = {(row["name"], row["phase"]): row["status"] for row in found["rows"]}
    assert statuses == {
        ("clean N+1", "documentation"): "passed",
        ("clean N+1", "security"): "passed",
        ("release notes missing", "documentation"): "caught",
        ("endpoint no longer requires auth", "security"): "caught",
    }, found["table"]
    assert (found["detection_rate"], found["false_alarms"]) == (1.0, 0)
