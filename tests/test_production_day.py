"""A healthy production day: the reference service is healthy, but its host is not a quiet lab — no version
endpoint, a role relcheck has no token for, no DSN given to relcheck, a request counter that leaves health out.
Each phase with rollback triggers is run under each condition: it may be BLOCKED by what it could not check (not
verified, naming the key), never FAIL, never ROLLBACK. The test prints the false-ROLLBACK count of the matrix.
(A restart inside the monitoring window and replicas behind one selector: tests/test_prometheus.py; writes during
the backup and the deploy: tests/test_live_data_safety.py.)"""

from __future__ import annotations

import pytest

from relcheck.run import runner


def without_token(role: str):
    def edit(data: dict) -> dict:
        del data["target"]["auth"]["tokens"][role]
        return data

    return edit


# condition -> (config changes, an edit of the written config, the reference service's switches)
CONDITIONS = {
    "no version endpoint": ({"target": {"routes": {"version": ""}}}, None, {}),
    "a role without a token": ({}, without_token("admin"), {}),
    "no target.dsn": ({"target": {"dsn": "", "admin_dsn": ""}}, None, {}),
    "a request counter that does not count health": ({}, None, {"uncounted_health": True}),
}


def false_alarms(checked: runner.Outcome) -> list[str]:
    """What a healthy service must never get: a FAIL, a ROLLBACK, a not verified without its reason."""
    found = [f"{test} FAIL: {reason}" for test, (status, reason) in checked.statuses().items() if status == "fail"]
    found += [
        f"{test} not verified without a reason"
        for test, (s, r) in checked.statuses().items()
        if s == "not verified" and not r
    ]
    if checked.verdict == "ROLLBACK" or checked.returncode == 3:
        found.append(f"ROLLBACK: {checked.manifest.get('verdict_reasons')}")
    return found


@pytest.mark.parametrize("phase", ["post_deploy", "monitoring"])
def test_a_healthy_production_day_is_never_told_to_roll_back(bench, faulty, phase):
    rollbacks, alarms = 0, {}
    for name, (changes, edit, switches) in CONDITIONS.items():
        healthy = faulty(**switches)
        slug = name.replace(" ", "-")
        config = bench.config({**changes, "reports": str(bench.tmp / slug)}, target=healthy, name=f"{slug}.toml")
        if edit:
            runner.write_config(edit(runner.read_config(config)), config)
        checked = bench.run(config, "-m", phase)
        assert checked.statuses(), f"{name}: no result\n{checked.output[-2000:]}"
        rollbacks += checked.verdict == "ROLLBACK"
        if found := false_alarms(checked):
            alarms[name] = found
    print(f"healthy production day, {phase}: {rollbacks} false ROLLBACK in {len(CONDITIONS)} conditions")
    assert not alarms, alarms
