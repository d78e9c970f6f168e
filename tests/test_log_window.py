"""The service log of this release: its window starts at the deploy (record, post_deploy.since, the service
manager's start), never at the start of the file; naive timestamps are read in target.service.log_timezone."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from fakes import SystemdHost

from conftest import DEFAULT_CONFIG
from relcheck.core import config as config_module
from relcheck.core.config import Service
from relcheck.core.statuses import NotVerified
from relcheck.probes import auditlog
from relcheck.run import runner
from relcheck.target import logs
from relcheck.target.service import ProcessService, SystemdService, UnmanagedService
from relcheck.target.target import Target

DEPLOYED = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)
PATTERNS, ALLOWED = config_module.PostDeploy().log_patterns, []


def deployed_service(tmp_path, log: str, service=None, **changes) -> Target:
    """A target whose log is `log`, with config changes (e.g. post_deploy.since, target.service.log_timezone)."""
    path = tmp_path / "service.log"
    path.write_text(log)
    cfg = config_module.load(DEFAULT_CONFIG, changes)
    url = "http://127.0.0.1:1"
    return Target(cfg, url, "", "", {}, service or UnmanagedService(url), path, "remote")


def errors(target: Target, deploy_started: datetime | None = DEPLOYED) -> list[tuple[int, str]]:
    excerpt = logs.since_deploy(target, deploy_started)
    return [(p.line.number, p.line.text) for p in logs.problems(excerpt.lines, PATTERNS, ALLOWED)]


def test_the_window_starts_at_the_deploy_never_at_the_start_of_the_log(tmp_path):
    old = "2026-11-12T08:00:00Z ERROR database unavailable (weeks ago)\nTraceback (most recent call last):\n"
    healthy = deployed_service(tmp_path, old + "2026-12-03T10:01:00Z INFO GET /health 200\n")
    assert errors(healthy) == []  # the old ERROR and its traceback are before the window
    broken = deployed_service(
        tmp_path, old + "2026-12-03T10:01:00Z INFO ok\n2026-12-03T10:02:00Z ERROR worker crashed\n"
    )
    assert errors(broken) == [(4, "2026-12-03T10:02:00Z ERROR worker crashed")]

    # no deploy record: post_deploy.since, as the operator who deployed with another tool says
    since = {"post_deploy": {"since": "2026-12-03T15:30:00+05:30"}}
    assert errors(deployed_service(tmp_path, old + "2026-12-03T10:01:00Z INFO ok\n", **since), None) == []
    excerpt = logs.since_deploy(deployed_service(tmp_path, old, **since), None)
    assert (excerpt.since, excerpt.since_from) == (DEPLOYED, "post_deploy.since")
    assert logs.since_deploy(deployed_service(tmp_path, old, **since), DEPLOYED).since_from.startswith(
        "the deploy record"
    )


def test_an_error_logged_while_relchecks_own_probe_failed_is_relchecks_a_real_one_still_counts(tmp_path):
    """relcheck init's GET /__version__ answered 500 (Kinto without version.json): the ERROR and its traceback logged
    meanwhile are relcheck's (shown, not counted); an ERROR 10 s later is the release's."""
    probe = "2026-12-03 15:35:52,573 ERROR [root] Version file missing\nTraceback (most recent call last):\n  File x\n"
    later = "2026-12-03 15:36:02,001 ERROR [kinto.core] storage backend failed\n"
    log = f"2026-12-03 15:35:52,561 INFO [request.summary] \n{probe}{later}"
    target = deployed_service(tmp_path, log, target={"service": {"log_timezone": "Asia/Kolkata"}})
    sent = datetime(2026, 12, 3, 10, 5, 52, 560000, tzinfo=timezone.utc).timestamp()
    own = [logs.OwnRequest("GET", "/__version__", 500, sent, sent + 0.02)]
    excerpt = logs.since_deploy(target, DEPLOYED)
    theirs, caused = logs.relchecks(logs.problems(excerpt.lines, PATTERNS, ALLOWED), own)
    assert [p.line.number for p in theirs] == [5]  # the release's error still counts
    assert [(p.line.number, r.route) for p, r in caused] == [(2, "/__version__"), (3, "/__version__")]
    assert logs.relchecks(logs.problems(excerpt.lines, PATTERNS, ALLOWED), [])[1] == []  # no record: all count
    # a journal line's time is its own stamp (short-iso)
    assert logs.journal_time("2026-12-03T15:35:52+0530 host kinto[1]: ERROR x") == datetime.fromtimestamp(
        int(sent), timezone.utc
    )


def test_an_unknown_deploy_time_is_not_verified_naming_the_key_never_a_whole_file_read(tmp_path):
    target = deployed_service(tmp_path, "2026-11-12T08:00:00Z ERROR weeks ago\n")
    with pytest.raises(
        NotVerified, match=r"the deploy time is unknown: .* service manager \(none\) .*set post_deploy\.since"
    ):
        logs.since_deploy(target, None)


def test_without_a_deploy_time_the_window_starts_at_the_service_managers_start(tmp_path):
    process = ProcessService(["sleep", "30"], {}, tmp_path, tmp_path / "out")
    assert process.started() is None
    process.start()
    try:
        target = deployed_service(tmp_path, "2020-01-01T00:00:00Z ERROR an earlier run\n", process)
        excerpt = logs.since_deploy(target, None)
        assert excerpt.since_from == "the service's start (process)" and excerpt.lines == []
    finally:
        process.stop()

    host = SystemdHost(tmp_path / "app1", {"kundli.service": True})
    unit = SystemdService("kundli.service", host.prefix)
    assert unit.started() is None  # systemd does not say (older than 248, or not active)
    units = json.loads(host.state.read_text())
    units["kundli.service"]["ActiveEnterTimestamp"] = f"@{int(DEPLOYED.timestamp())}"
    host.state.write_text(json.dumps(units))
    assert unit.started() == DEPLOYED
    assert logs.window(None, config_module.load(DEFAULT_CONFIG), unit) == (DEPLOYED, "the service's start (systemd)")


# 09:50 UTC is before the deploy, 10:10 UTC after it: written naive in the service's local time
EAST = "2026-12-03 15:20:00,120 ERROR pre-deploy error\n2026-12-03 15:40:00,000 INFO after the deploy\n"  # +05:30
WEST = "2026-12-03 04:50:00 INFO pre-deploy\n2026-12-03 05:10:00 ERROR post-deploy error\n"  # -05:00


def test_naive_timestamps_are_read_in_the_logs_zone_east_and_west_of_utc(tmp_path, monkeypatch):
    east = deployed_service(tmp_path, EAST, **{"target": {"service": {"log_timezone": "Asia/Kolkata"}}})
    assert errors(east) == []  # read as UTC, the pre-deploy error would be 15:20 UTC: after the deploy
    assert logs.since_deploy(east, DEPLOYED).timestamps == "naive, read as Asia/Kolkata (target.service.log_timezone)"
    west = deployed_service(tmp_path, WEST, **{"target": {"service": {"log_timezone": "America/New_York"}}})
    assert errors(west) == [(2, "2026-12-03 05:10:00 ERROR post-deploy error")]  # as UTC it was dropped

    with_offsets = deployed_service(
        tmp_path, "2026-12-03T15:20:00+05:30 ERROR before\n2026-12-03T05:10:00-05:00 ERROR after\n"
    )
    assert [n for n, _ in errors(with_offsets)] == [2]
    assert logs.since_deploy(with_offsets, DEPLOYED).timestamps == "with their UTC offsets"

    monkeypatch.setenv("TZ", "Asia/Kolkata")  # unset log_timezone: this host's zone, and the evidence says so
    time.tzset()
    try:
        host = deployed_service(tmp_path, EAST)
        assert errors(host) == []
        assert logs.since_deploy(host, DEPLOYED).timestamps == (
            "naive, read as this host's zone Asia/Kolkata (target.service.log_timezone unset)"
        )
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_audit_records_with_naive_times_are_read_in_the_logs_zone():
    pattern = r"^(?P<time>\S+ \S+) audit actor=(?P<actor>\S+) action=(?P<action>\S+) object=(?P<object>\S+)"
    line = "2026-12-03 15:30:02 audit actor=ops action=chart.create object=7"  # 10:00:02 UTC
    records = auditlog.from_log([line], pattern, "7", logs.Stamps(Service(log_timezone="Asia/Kolkata")))
    assert records[0].time == DEPLOYED + timedelta(seconds=2)  # read as UTC: 5.5 h after the audited change
    assert auditlog.matching(records, "ops", "chart.create", DEPLOYED, window_s=10) == records


def test_the_timestamp_format_comes_from_the_config(tmp_path):
    apache = "[03/Dec/2026:15:20:00 +0530] ERROR before\n[03/Dec/2026:10:10:00 +0000] ERROR after\n"
    unread = deployed_service(tmp_path, apache)
    with pytest.raises(NotVerified, match="no line of .* starts with a timestamp as target.service.log_timestamp"):
        logs.since_deploy(unread, DEPLOYED)
    service = {"log_timestamp": r"^\[([^]]+)\]", "log_time_format": "%d/%b/%Y:%H:%M:%S %z"}
    assert [n for n, _ in errors(deployed_service(tmp_path, apache, target={"service": service}))] == [2]


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"post_deploy": {"since": "2h"}}, "post_deploy.since: Input should be a valid datetime"),
        ({"post_deploy": {"since": "2026-12-03T08:00:00"}}, "post_deploy.since: needs its UTC offset, e.g. "),
        ({"target": {"service": {"log_timezone": "Asia/Kolkatta"}}}, "log_timezone: not an IANA time zone"),
        ({"target": {"service": {"log_timestamp": r"^\d+"}}}, "log_timestamp: needs a group around the timestamp"),
    ],
)
def test_a_bad_window_setting_is_a_one_line_config_error(changes, problem):
    with pytest.raises(config_module.ConfigError) as error:
        config_module.load(DEFAULT_CONFIG, changes)
    assert problem in str(error.value) and "\n" not in str(error.value)


def test_a_big_log_numbers_its_lines_in_the_file(tmp_path):
    path = tmp_path / "service.log"
    path.write_text("".join(f"2026-12-03T10:00:{i % 60:02d}Z INFO line {i + 1}\n" for i in range(200)))
    first, text = logs.numbered_tail(path, 100)
    assert text.splitlines()[0].endswith(f"INFO line {first}") and first > 190


def test_check_logs_for_errors_on_a_service_deployed_by_another_tool(bench, runtime):
    """Through a real post-deploy run: an ERROR from before the deploy is no failure, one after it is, and an
    unknown deploy time is not verified, naming the key."""
    target = runtime.spawn({})
    try:
        with target.log_file.open("a") as log:
            log.write("2026-11-12T08:00:00.000Z ERROR kundli weeks before this deploy\n")  # appended, but older
        config = bench.config(target=target)
        checked = bench.run(config, "-m", "post_deploy", "-k", "logs_for_errors")
        assert checked.status("test_check_logs_for_errors") == "pass", checked.reason("test_check_logs_for_errors")
        assert checked.facts("test_check_logs_for_errors", "Log")["timestamps"] == "with their UTC offsets"

        with target.log_file.open("a") as log:
            log.write(
                f"{datetime.now(timezone.utc) + timedelta(seconds=1):%Y-%m-%dT%H:%M:%S.000Z} ERROR kundli crash\n"
            )
        checked = bench.run(config, "-m", "post_deploy", "-k", "logs_for_errors")
        assert checked.status("test_check_logs_for_errors") == "fail"
        assert "error line(s) in the log, first (line " in checked.reason("test_check_logs_for_errors")

        unknown = runner.read_config(config)
        del unknown["post_deploy"]["since"]
        checked = bench.run(runner.write_config(unknown, config), "-m", "post_deploy", "-k", "logs_for_errors")
        assert checked.status("test_check_logs_for_errors") == "not verified"
        assert checked.reason("test_check_logs_for_errors").endswith("set post_deploy.since")
    finally:
        target.service.stop()
