"""The one outcome rule, tested as a rule: whatever error a fixture meets while gathering evidence, no check FAILs
and no rollback trigger fires; every check that needed the evidence says not verified with the cause."""

from __future__ import annotations

from pathlib import Path

import pytest
import shop
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


def test_without_a_dsn_nothing_connects_anywhere(bench, healthy, runtime):
    """With target.dsn unset and the caller's PG* variables naming a real server, the database checks are not
    verified naming the key, and no scratch database appears on that server (libpq's fallback is never used)."""
    bench.env.update({"PGHOST": runtime.pg.socket_dir, "PGUSER": "postgres", "PGDATABASE": "kundli_db"})
    config = bench.config({"target": {"dsn": "", "admin_dsn": ""}}, target=healthy)
    checked = bench.run(config, "-m", "pre_deploy", "-k", "backup")
    assert checked.status("test_backup_current_system") == "not verified"
    assert "target.dsn" in checked.reason("test_backup_current_system")
    assert not shop.scratch_databases(runtime.pg.admin_dsn())
