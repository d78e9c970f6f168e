"""Kinto, a service nobody here wrote, as a remote target: `relcheck init` writes its config, the operator fills in
what only they know (README "Checking a service you already run"), and every phase's item statuses match what is
true of Kinto (EXPECTED): no false pass, no false ROLLBACK, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from kinto_target import VERSION, Kinto, kinto_executable

from conftest import installed, run_phase, statuses_of
from relcheck.run import runner

pytestmark = pytest.mark.slow
PLAIN_HTTP = "warn"  # on loopback, plain http is allowed by init's config: a warning, never a pass
# What is true of Kinto 26.5.0 deployed as tests/kinto_target.py does, with the config `relcheck init` writes and the
# operator's additions below. Every check not named is NOT VERIFIED (its reason names the key that would verify it):
# no tests or code of its own in the deployment tree, no git history, no contacts, no tracker, no notification
# channel, no advisory mirror, no latency SLA, no business metrics, no service manager or host access.
EXPECTED = {
    "pre_release": {
        "pass": {
            "test_load_testing_completed",  # its safe GETs, answered
            "test_stress_testing_completed",
            "test_resource_utilization",  # process_* metrics of its /__metrics__
            "test_response_times_within_sla",
            "test_error_rates_acceptable",
            "test_access_controls",  # anonymous 401, viewer 403 on POST /buckets, admin 201
            "test_technical_documentation",  # README.md and CHANGELOG.md, no placeholders
            "test_release_notes",  # CHANGELOG.md has 26.5.0
        },
        PLAIN_HTTP: {"test_data_protection"},  # CSP and nosniff as init saw them; no secrets or PII in answers
    },
    "pre_deploy": {
        "pass": {
            "test_backup_current_system",  # pg_dump, restored into a scratch database and compared
            "test_verify_dependencies",  # kinto[postgresql]==26.5.0 resolved by pip; PostgreSQL 16 supported
            "test_prepare_monitoring",
        },
    },
    "post_deploy": {
        "pass": {
            "test_access_controls",
            "test_service_is_running[post_deploy]",  # version 26.5.0 from /__version__ (its version.json)
            "test_check_logs_for_errors",  # after allow-listing its start-up complaint
            "test_health_checks[post_deploy]",  # /__heartbeat__ and SELECT 1
            "test_verify_metrics_collection",  # kinto_request_summary_total advances
            "test_critical_paths",
            "test_monitor_performance",  # the smoke against the pre-deploy snapshot
            "test_rollback_trigger[Critical service failure]",
            "test_rollback_trigger[Unacceptable performance]",
            "test_rollback_trigger[Data integrity issues]",
        },
        PLAIN_HTTP: {"test_data_protection"},
    },
    "monitoring": {
        "pass": {
            "test_rollback_trigger[Critical service failure]",
            "test_cpu_usage[monitoring]",
            "test_memory_usage[monitoring]",
            "test_error_rates[monitoring: Error rates normal]",
            "test_request_rates[monitoring]",
            "test_error_rates[monitoring: Error rates]",
            "test_monitor_system_health",
        },
    },
}
# A slower post-deploy smoke that its few samples cannot show significantly is a warning (timing on a shared machine)
TIMING = {"test_monitor_performance": {"pass", "warn"}}
DECISIONS = {"pre_release": "", "pre_deploy": "", "post_deploy": "BLOCKED", "monitoring": "BLOCKED"}  # never ROLLBACK


@pytest.fixture(scope="module")
def kinto(runtime, tmp_path_factory):
    installed(kinto_executable(), "Kinto (.kinto-venv)", "RELCHECK_REQUIRE_KINTO")
    service = Kinto(runtime, tmp_path_factory.mktemp("kinto"))
    yield service
    service.stop()


def filled_in(kinto: Kinto) -> dict:
    """What the operator adds after `relcheck init` (the keys its summary names)."""
    return {
        "release": {"previous_version": "26.4.0"},
        "target": {
            "admin_dsn": "env:KINTO_ADMIN_DSN",
            "auth": {"scheme": "Basic", "tokens": {"admin": "env:KINTO_ADMIN", "viewer": "env:KINTO_VIEWER"}},
            "service": {"log_file": str(kinto.log)},
        },
        "security": {
            "access": {
                "rules": [
                    {"method": "GET", "path": "/accounts", "expect": {"anonymous": 401, "viewer": 200}},
                    {
                        "method": "POST",
                        "path": "/buckets",
                        "body": {"data": {"id": "rbac-{unique}"}},
                        "expect": {"anonymous": 401, "viewer": 403, "admin": 201},
                    },
                ]
            }
        },
        "post_deploy": {
            "since": kinto.process.started().isoformat(),  # deployed without `relcheck deploy`: when it was
            # Kinto logs this at every start even when given --ini: known, harmless, so allow-listed
            "log_allow": [r"ERROR \[kinto\.config\] Could not find config file at \./config/kinto\.ini"],
            "critical_paths": [
                {"name": "server info", "path": "/", "expect": 200, "require_fields": ["project_version"]},
                {"name": "heartbeat", "path": "/__heartbeat__", "expect": 200, "require_fields": ["storage"]},
                {
                    "name": "create a bucket",
                    "method": "POST",
                    "path": "/buckets",
                    "role": "admin",
                    "body": {"data": {"id": "cp-{unique}"}},
                    "expect": 201,
                    "require_fields": ["data"],
                },
            ],
        },
    }


def test_init_then_every_phase_on_kinto(kinto, wheel_relcheck, tmp_path):
    work = tmp_path / "ops"  # the operator's own directory, outside relcheck's checkout; relcheck from its wheel
    work.mkdir()
    init = subprocess.run(
        [str(wheel_relcheck), "init", "--base-url", kinto.base_url, "--source", str(kinto.tree), "--dsn", kinto.dsn,
         "--release-version", VERSION, "--write-load"],
        cwd=work, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert init.returncode == 0 and "Traceback" not in init.stderr, init.stderr
    config = work / "relcheck.toml"
    runner.write_config(runner.merge(runner.read_config(config), filled_in(kinto)), config)
    env = {
        "RELCHECK_TARGET_DSN": kinto.dsn,
        "KINTO_ADMIN_DSN": kinto.admin_dsn,
        "KINTO_ADMIN": kinto.tokens["admin"],
        "KINTO_VIEWER": kinto.tokens["viewer"],
    }
    for phase, expected in EXPECTED.items():
        started = time.monotonic()
        output, manifest = run_phase(wheel_relcheck, work, phase, env)
        assert "Traceback" not in output and manifest, output[-3000:]
        statuses = statuses_of(manifest)
        wanted = {test: status for status, tests in expected.items() for test in tests}
        wrong = {
            test: f"{status} ({reason}), expected {wanted.get(test, 'not verified')}"
            for test, (status, reason) in statuses.items()
            if status not in TIMING.get(test, {wanted.get(test, "not verified")})
        }
        assert not wrong, f"{phase}: " + json.dumps(wrong, indent=1)
        assert set(wanted) <= set(statuses), f"{phase}: not run: {set(wanted) - set(statuses)}"
        assert (manifest.get("decision") or {}).get("name", "") == DECISIONS[phase]
        print(f"{phase}: {time.monotonic() - started:.1f} s")


def test_init_passes_over_a_version_route_that_answers_500(runtime, tmp_path):
    """Kinto's /__version__ answers 500 until a version.json is deployed: init reads the version from its root."""
    installed(kinto_executable(), "Kinto (.kinto-venv)", "RELCHECK_REQUIRE_KINTO")
    bare = Kinto(runtime, tmp_path / "kinto-bare", version_file=False)
    try:
        init = subprocess.run(
            [sys.executable, "-m", "relcheck.cli", "init", "--base-url", bare.base_url, "--out",
             str(tmp_path / "relcheck.toml")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        bare.stop()
    assert init.returncode == 0, init.stderr
    assert "note: GET /__version__ answers 500 (a version route that is not deployed?)" in init.stdout
    written = runner.read_config(tmp_path / "relcheck.toml")
    assert written["target"]["routes"]["version"] == "/" and written["target"]["version"] == {
        "pointer": "/project_version"
    }
