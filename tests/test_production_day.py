"""A healthy production day: the reference service is healthy, but its host is not a quiet lab — no version
endpoint, a role relcheck has no token for, no DSN given to relcheck, a request counter that leaves health out, an ERROR
from weeks ago in the log of a service deployed by another tool, naive local times east of UTC.
Each phase with rollback triggers is run under each condition: it may be BLOCKED by what it could not check (not
verified, naming the key), never FAIL, never ROLLBACK. The test prints the false-ROLLBACK count of the matrix.
(A restart inside the monitoring window and replicas behind one selector: tests/test_prometheus.py; writes during
the backup and the deploy: tests/test_live_data_safety.py.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conftest import false_alarms
from relcheck.run import runner


def without_token(role: str):
    def edit(data: dict) -> dict:
        del data["target"]["auth"]["tokens"][role]
        return data

    return edit


def log_line(when: datetime, text: str):
    """An error line the service's log got before this release (appended as a shipper would, out of order)."""

    def prepare(target) -> None:
        with open(target.log_file, "a") as log:
            log.write(f"{when:%Y-%m-%dT%H:%M:%S} {text}\n")

    return prepare


@dataclass
class Condition:
    changes: dict = field(default_factory=dict)
    edit: Callable[[dict], dict] | None = None  # of the written config
    switches: dict = field(default_factory=dict)  # the reference service's
    prepare: Callable | None = None  # of the running service


KOLKATA = ZoneInfo("Asia/Kolkata")
CONDITIONS = {
    "no version endpoint": Condition({"target": {"routes": {"version": ""}}}),
    "a role without a token": Condition(edit=without_token("admin")),
    "no target.dsn": Condition({"target": {"dsn": "", "admin_dsn": ""}}),
    "a request counter that does not count health": Condition(switches={"uncounted_health": True}),
    # deployed by another tool: no deploy record, an ERROR from weeks before in the log
    "an ERROR from weeks ago in the log": Condition(
        prepare=log_line(datetime.now(timezone.utc) - timedelta(weeks=3), "ERROR lost the database (weeks ago)")
    ),
    # naive local times east of UTC: read as UTC, two hours ago in Kolkata would be 3.5 hours in the future
    "a naive local-time log east of UTC": Condition(
        {"target": {"service": {"log_timezone": "Asia/Kolkata"}}},
        prepare=log_line(datetime.now(KOLKATA) - timedelta(hours=2), "ERROR before the deploy (local time)"),
    ),
}


@pytest.mark.parametrize("phase", ["post_deploy", "monitoring"])
def test_a_healthy_production_day_is_never_told_to_roll_back(bench, faulty, runtime, phase):
    rollbacks, alarms = 0, {}
    for name, condition in CONDITIONS.items():
        # a service whose log a condition writes to is its own (no other test reads that log)
        healthy = runtime.spawn(condition.switches) if condition.prepare else faulty(**condition.switches)
        if condition.prepare:
            condition.prepare(healthy)
        slug = name.replace(" ", "-")
        changes = {**condition.changes, "reports": str(bench.tmp / slug)}
        config = bench.config(changes, target=healthy, name=f"{slug}.toml")
        if condition.edit:
            runner.write_config(condition.edit(runner.read_config(config)), config)
        checked = bench.run(config, "-m", phase)
        assert checked.statuses(), f"{name}: no result\n{checked.output[-2000:]}"
        rollbacks += checked.verdict == "ROLLBACK"
        if found := false_alarms(checked):
            alarms[name] = found
    print(f"healthy production day, {phase}: {rollbacks} false ROLLBACK in {len(CONDITIONS)} conditions")
    assert not alarms, alarms
