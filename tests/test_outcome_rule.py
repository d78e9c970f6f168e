"""The one outcome rule, tested as a rule: whatever error a fixture meets while gathering evidence, no check FAILs
and no rollback trigger fires; every check that needed the evidence says not verified with the cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from inject_errors import ERRORS

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("error", sorted(ERRORS))
@pytest.mark.parametrize("phase", ["post_deploy", "monitoring", "pre_release"])
def test_an_error_while_gathering_is_never_a_failure_nor_a_rollback(bench, error, phase):
    bench.env.update({"RELCHECK_INJECT": error, "PYTHONPATH": str(TESTS)})
    checked = bench.run(bench.config(), "-m", phase, "-p", "inject_errors")
    statuses = checked.statuses()
    assert statuses, checked.output[-2000:]
    failed = {test: reason for test, (status, reason) in statuses.items() if status == "fail"}
    assert not failed, f"{error} in every fixture failed checks: {failed}"
    assert checked.verdict == "BLOCKED" and checked.returncode == 1
    assert not (checked.manifest["decision"] or {}).get("fired")
    reasons = [reason for status, reason in statuses.values() if status == "not verified"]
    assert all(reasons) and any("injected" in r or "TimeoutExpired" in r for r in reasons)
