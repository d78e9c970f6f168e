"""Liveness and the service's own test suite, end to end (health and status, a systemd unit and its journal, the
deploy dry run, All tests passing and coverage): each passes on the healthy reference service and fails on a
broken one."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest
from fakes import SystemdHost

from conftest import REPO, relcheck_cli
from relcheck.core.config import Release
from relcheck.core.errors import TargetError
from relcheck.run.runner import merge, read_config
from relcheck.target.service import SystemdService


def test_health_and_status_pass_on_the_healthy_service(healthy_run):
    assert healthy_run.status("test_service_is_running[post_deploy]") == "pass"
    assert healthy_run.status("test_health_checks[post_deploy]") == "pass"


def test_health_check_fails_when_the_service_is_unhealthy(bench, faulty):
    target = faulty(healthy=False, unhealthy=True)
    checked = bench.run(bench.config(target=target), "-m", "post_deploy or post_release", "-k", "health or running")
    assert checked.status("test_health_checks[post_deploy]") == "fail"
    assert checked.reason("test_monitor_system_health").endswith("/health -> HTTP 503")
    assert "HTTP 503" in checked.reason("test_health_checks[post_deploy]")
    assert checked.status("test_service_is_running[post_deploy]") == "pass"  # it runs, it is just unhealthy
    assert checked.returncode == 1


def test_service_status_fails_when_the_service_is_down(bench, runtime):
    target = runtime.spawn({})
    target.service.stop()
    checked = bench.run(bench.config(target=target), "-m", "post_deploy", "-k", "running")
    assert checked.status("test_service_is_running[post_deploy]") == "fail"
    assert checked.reason("test_service_is_running[post_deploy]") == "service is not running: port closed"


def test_a_systemd_unit_and_its_journal_since_the_deploy(bench, healthy, tmp_path):
    """A real host: status from `systemctl show`; errors since the deploy and leaked secrets from the unit's journal."""
    host = SystemdHost(tmp_path / "app1", {"kundli.service": True})
    deployed = datetime.now(timezone.utc) - timedelta(minutes=5)
    host.log(deployed - timedelta(hours=1), "kundli.service", "ERROR database unavailable (before the deploy)")
    host.log(deployed + timedelta(minutes=1), "kundli.service", "INFO GET /health 200")
    unit = {
        "manager": "systemd",
        "unit": "kundli.service",
        "journal_unit": "kundli.service",
        "command_prefix": host.prefix,
    }
    config = bench.config({"target": {"service": unit}}, target=healthy)
    record = bench.tmp / "reports" / Release(**read_config(config)["release"]).release_id / "deploy" / "record.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"started": deployed.isoformat()}))
    checks = ("-m", "post_deploy", "-k", "service_is_running or logs_for_errors or data_protection")
    checked = bench.run(config, *checks)
    assert checked.status("test_service_is_running[post_deploy]") == "pass"
    assert checked.facts("test_service_is_running[post_deploy]", "Service")["MainPID"] == "4242"
    assert checked.status("test_check_logs_for_errors") == "pass"
    assert checked.facts("test_check_logs_for_errors", "Log")["lines read"] == "1"
    assert checked.status("test_data_protection") == "warn"  # plain http, allowed for the internal reference

    SystemdService("kundli.service", host.prefix).stop()
    host.log(deployed + timedelta(minutes=2), "kundli.service", "ERROR worker crashed")
    host.log(deployed + timedelta(minutes=3), "kundli.service", f"DEBUG auth header {healthy.http.tokens['admin']}")
    checked = bench.run(config, *checks)
    assert checked.reason("test_service_is_running[post_deploy]") == "service is not running: inactive (dead)"
    assert checked.reason("test_check_logs_for_errors").endswith("kundli[4242]: ERROR worker crashed")
    assert checked.reason("test_data_protection").startswith(
        "1 data-protection finding(s): service log (journal of kundli.service)"
    )
    with pytest.raises(
        TargetError,
        match="systemctl start kundli-typo.service failed: Failed to start "
        "kundli-typo.service: Unit kundli-typo.service not found.",
    ):
        SystemdService("kundli-typo.service", host.prefix).start()
    assert SystemdService("kundli-typo.service", host.prefix).status().detail == "unit kundli-typo.service not found"


def test_deploy_dry_run_names_the_exact_commands_and_changes_nothing(bench, healthy, tmp_path):
    host = SystemdHost(tmp_path / "app1", {"kundli.service": True})
    unit = {"manager": "systemd", "unit": "kundli.service", "command_prefix": host.prefix}
    config = bench.config({"target": {"service": unit}}, target=healthy)
    result = relcheck_cli(config, "deploy", "--dry-run", env=bench.env)
    assert result.returncode == 0, result.stderr
    plan = result.stdout.splitlines()
    assert [line.split(":")[0] for line in plan] == [
        "1. Stop application services",
        "2. Backup data",
        "3. Deploy code",
        "4. Run migrations",
        "5. Start services",
    ]
    assert plan[0].endswith(" sh -c 'systemctl stop kundli.service'") and "systemctl start kundli.service" in plan[4]
    assert "git checkout" in plan[2] and "alembic upgrade head" in plan[3]
    assert SystemdService("kundli.service", host.prefix).status().running
    assert not (bench.tmp / "reports").exists()


def test_all_tests_passing_and_coverage_pass_on_the_reference_service(healthy_run):
    assert healthy_run.status("test_all_tests_passing") == "pass"
    assert healthy_run.status("test_code_coverage") == "pass"


NO_DATABASE = {"quality": {"tests": {"env": {"KUNDLI_TEST_DATABASE_URL": ""}}}}  # these projects have none


def write_suite(root, tests: str, module: str = "def double(x):\n    return 2 * x\n"):
    """A tiny target project: a module and its tests."""
    (root / "tests").mkdir(parents=True)
    (root / "app.py").write_text(module)
    (root / "tests" / "test_app.py").write_text(textwrap.dedent(tests))
    return root


def partly_tested(root, helper: str, count: int):
    """A project whose one test covers double() and none of `count` helpers (helper: a body with {i})."""
    untested = "def double(x):\n    return 2 * x\n\n" + "".join(
        f"def helper_{i}(x):\n{helper.format(i=i)}\n" for i in range(count)
    )
    return write_suite(root, "from app import double\ndef test_double():\n    assert double(2) == 4\n", module=untested)


def test_all_tests_passing_fails_on_a_failing_test(bench, healthy, tmp_path):
    source = write_suite(
        tmp_path / "proj",
        """
        from app import double
        def test_double():
            assert double(2) == 4
        def test_regression():
            assert double(3) == 5, "double(3) should be 5"
    """,
    )
    checked = bench.run(
        bench.config({"target": {"source": str(source)}, **NO_DATABASE}, target=healthy), "-k", "all_tests"
    )
    assert checked.status("test_all_tests_passing") == "fail"
    assert "tests.test_app::test_regression" in checked.reason("test_all_tests_passing")


def test_skipped_tests_count_against_the_gate(bench, healthy, tmp_path):
    source = write_suite(
        tmp_path / "proj",
        """
        import pytest
        from app import double
        def test_double():
            assert double(2) == 4
        @pytest.mark.skip(reason="flaky")
        def test_skipped():
            pass
    """,
    )
    checked = bench.run(
        bench.config({"target": {"source": str(source)}, **NO_DATABASE}, target=healthy), "-k", "all_tests"
    )
    assert checked.status("test_all_tests_passing") == "fail"
    assert "1 test(s) skipped" in checked.reason("test_all_tests_passing")


def test_coverage_fails_below_the_threshold(bench, healthy, tmp_path):
    source = partly_tested(tmp_path / "proj", "    if x:\n        return {i}\n    return -{i}\n", 20)
    changes = merge(NO_DATABASE, {"target": {"source": str(source)}, "quality": {"coverage": {"source": ["app"]}}})
    checked = bench.run(bench.config(changes, target=healthy), "-k", "coverage or all_tests")
    assert checked.status("test_all_tests_passing") == "pass"
    assert checked.status("test_code_coverage") == "fail"
    assert "does not exceed 95 %" in checked.reason("test_code_coverage")


def test_a_test_runner_that_does_not_exist_leaves_the_tests_and_coverage_not_verified(bench, healthy, tmp_path):
    source = write_suite(tmp_path / "proj", "def test_nothing():\n    pass\n")
    changes = {
        "target": {"source": str(source)},
        "quality": {"tests": {"command": ["{python}", "-m", "no_such_test_runner"]}},
    }
    checked = bench.run(bench.config(changes, target=healthy), "-k", "coverage or all_tests")
    assert checked.status("test_code_coverage") == "not verified"
    assert "no_such_test_runner" in checked.reason("test_code_coverage")
    assert checked.status("test_all_tests_passing") == "not verified"
    reason = checked.reason("test_all_tests_passing")
    assert reason.startswith("the test runner could not start: ")
    assert reason.endswith("No module named no_such_test_runner (quality.tests.command, quality.tests.python)")


def test_a_runner_that_writes_no_junit_results_but_succeeds_is_not_verified(bench, healthy, tmp_path):
    source = write_suite(tmp_path / "proj", "def test_nothing():\n    pass\n")
    changes = merge(NO_DATABASE, {"target": {"source": str(source)}, "quality": {"tests": {"junit_option": "-q"}}})
    checked = bench.run(bench.config(changes, target=healthy), "-k", "all_tests")
    assert checked.status("test_all_tests_passing") == "not verified"
    assert checked.reason("test_all_tests_passing") == (
        "the test command exited 0 but wrote no JUnit results (quality.tests.junit_option)"
    )


def test_tests_that_ran_without_coverage_data_leave_coverage_not_verified(bench, healthy, tmp_path):
    """coverage.py measured nothing it was told to (quality.coverage.source names no module the tests import)."""
    source = partly_tested(tmp_path / "proj", "    return {i}\n", 2)
    changes = merge(NO_DATABASE, {"target": {"source": str(source)}, "quality": {"coverage": {"source": ["absent"]}}})
    checked = bench.run(bench.config(changes, target=healthy), "-k", "coverage or all_tests")
    assert checked.status("test_all_tests_passing") == "pass"
    assert checked.status("test_code_coverage") == "not verified"
    assert checked.reason("test_code_coverage").startswith("no coverage data: the test run produced none")


@pytest.mark.slow
def test_post_deploy_on_the_embedded_default_and_nothing_left_running(bench):
    """The README's ops smoke against the embedded default, alone (no pre-release or pre-deploy run of the release
    yet): every check of its own passes, reports, and leaves no process behind; the two triggers that also read the
    pre-release scans and the pre-deploy backup are not evaluated, naming the run that is missing (BLOCKED, never a
    PROCEED that did without them)."""
    checked = bench.run(bench.config(), "-m", "post_deploy")
    print(f"pytest -m post_deploy on the embedded target: {checked.seconds:.1f} s")
    assert checked.verdict == "BLOCKED" and checked.returncode == 1, checked.output[-3000:]
    assert [u["trigger"] for u in checked.manifest["decision"]["not_evaluated"]] == [
        "Data integrity issues",
        "Security vulnerabilities",
    ]
    assert not checked.manifest["decision"]["fired"]
    assert {
        checked.status(c)
        for c in (
            "test_service_is_running[post_deploy]",
            "test_health_checks[post_deploy]",
            "test_access_controls",
            "test_audit_logging",
            "test_rollback_trigger[Compliance violations]",
        )
    } == {"pass"}
    assert checked.status("test_data_protection") == "warn"  # plain http, allowed for the internal reference
    assert checked.reason("test_rollback_trigger[Security vulnerabilities]") == (
        "not evaluated: test_vulnerabilities_addressed no result (no complete run yet: run pytest -m pre_release for "
        "this release first); test_security_scan_and_dependency_audit no result (no complete run yet: run pytest -m "
        "pre_release for this release first)"
    )
    workdir = str(Path(checked.manifest["run"]["target"]["log"]).parent)
    assert workdir.split("/")[-1].startswith("relcheck-embedded-")
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if workdir in " ".join(p.info["cmdline"] or [])]
    assert not leftovers, leftovers


def is_service(process) -> bool:
    try:
        command = process.cmdline()
    except psutil.Error:  # already gone, or a zombie
        return False
    return "kundli" in command and "--port" in command


def test_interrupted_run_stops_the_embedded_target(tmp_path):
    """SIGTERM mid-run: fixtures tear down, so neither the service nor PostgreSQL survives, and the run's
    manifest is still written."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(REPO / "checks"),
            "-m",
            "post_deploy",
            "--relcheck-reports",
            str(tmp_path),
            "-p",
            "no:randomly",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    service = None
    deadline = time.monotonic() + 60
    while service is None and time.monotonic() < deadline and process.poll() is None:
        service = next((c for c in psutil.Process(process.pid).children(recursive=True) if is_service(c)), None)
        time.sleep(0.05)
    assert service is not None, "the embedded service never started"
    workdir = str(Path(service.environ()["KUNDLI_LOG_FILE"]).parent)
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    assert not service.is_running()
    survivors = [p for p in psutil.process_iter(["cmdline"]) if workdir in " ".join(p.info["cmdline"] or [])]
    assert not survivors, survivors
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["verdict"] == "PARTIAL" and "partial run: interrupted" in manifest["run"]["partial"]


def test_an_unconfigured_source_is_not_verified_and_relative_paths_resolve_beside_the_config(bench, healthy):
    """The mirror rule for failures: no database configured leaves Run health checks not verified (its HTTP part
    answered); a relative service log is found beside the config file, whatever the working directory."""
    relative_log = os.path.relpath(healthy.log_file, bench.tmp)
    tree = {"source": str(REPO / "examples/kundli-service"), "repository": str(REPO / "examples/kundli-service.bundle")}
    changes = {"base_dir": "", "target": {**tree, "dsn": "", "service": {"log_file": relative_log}}}
    config = bench.config(changes, target=healthy)
    checked = bench.run(config, "-m", "post_deploy", "-k", "health_checks or logs_for_errors")
    assert checked.status("test_health_checks[post_deploy]") == "not verified"
    assert checked.reason("test_health_checks[post_deploy]") == (
        "the database part is not verified: no database configured (target.dsn)"
    )
    assert checked.status("test_check_logs_for_errors") == "pass", checked.reason("test_check_logs_for_errors")


def test_tests_that_never_started_name_their_error_and_leave_coverage_not_verified(bench, healthy, tmp_path):
    source = write_suite(
        tmp_path / "proj",
        """
        import missing_dependency
        def test_double():
            assert True
    """,
    )
    checked = bench.run(
        bench.config({"target": {"source": str(source)}, **NO_DATABASE}, target=healthy), "-k", "all_tests or coverage"
    )
    assert checked.status("test_all_tests_passing") == "fail"
    assert "ModuleNotFoundError: No module named 'missing_dependency'" in checked.reason("test_all_tests_passing")
    assert checked.status("test_code_coverage") == "not verified"
    assert checked.reason("test_code_coverage").startswith("no coverage measured: the tests did not run (")


def test_the_items_own_figure_is_the_requirement_not_a_weaker_threshold(bench, healthy, tmp_path):
    """threshold_percent = 1 does not lower "Code coverage >95%": a weaker figure needs a signed waiver."""
    source = partly_tested(tmp_path / "proj", "    return {i}\n", 3)
    changes = merge(
        NO_DATABASE,
        {"target": {"source": str(source)}, "quality": {"coverage": {"source": ["app"], "threshold_percent": 1.0}}},
    )
    checked = bench.run(bench.config(changes, target=healthy), "-k", "coverage")
    assert checked.status("test_code_coverage") == "fail"
    assert checked.reason("test_code_coverage").endswith("does not exceed 95 %")
