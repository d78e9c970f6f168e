"""A Flask service with Flask-Migrate nobody here wrote (I Hate Money, tests/flask_target.py): `relcheck init` writes
its config (pytest tests on a scratch database, `flask db upgrade/downgrade -d ihatemoney/migrations`, the schema
version from alembic_version), the operator adds what only they know (README "A Flask service"), and every phase's
statuses match what is true of it (EXPECTED): no false pass, no false ROLLBACK, no traceback. The down-migration
is rehearsed through `flask db downgrade` on a scratch copy; a release whose down-migration cannot be upgraded again
on PostgreSQL (7.2.1's) fails *Prepare rollback plan* with the cause."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import SystemdHost
from flask_target import (
    HEADS,
    NEXT,
    PREVIOUS,
    SECRET_KEY,
    VERSION,
    IHateMoney,
    flask_python,
    previous_python,
    repository,
)

from conftest import HEALTHY_DECISIONS, installed, phase_as_expected, run_phase, statuses_of
from relcheck.run import runner

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("flask")]  # one service, set up once
# Its tests that ask DNS whether an address's domain takes mail (email-validator's deliverability check): they fail
# on a machine without DNS, which this one is; the operator leaves them out (README "A Flask service"). By -k, not
# --deselect, which takes node id prefixes (::test_invite would drop test_invite_code_invalidation too)
NEEDS_DNS = (
    "not test_notifications and not test_invitation_email_failure"
    " and not (TestBudget and test_invite and not test_invite_code_invalidation)"
)
# What is true of I Hate Money 7.0.1 deployed as tests/flask_target.py does, with the config `relcheck init` writes
# and the operator's additions below. Every check not named is NOT VERIFIED (its reason names the key that would
# verify it). Measured by hand, in its tree at v7.0.1 with .flask-venv's python:
#   coverage run --branch --source=ihatemoney --omit='*/tests.py,*/tests/*,*/test_*.py,*/migrations/*' \
#     -m pytest ihatemoney/tests -q -p no:cacheprovider -k "$NEEDS_DNS"; coverage report --precision=2
# on SQLite (its tests' default) gives 86.82 %, the figure relcheck's run on PostgreSQL gives; 121 passed, 5 skipped
# (its own skips), 3 left out
PASSED, SKIPPED, TRUE_COVERAGE = 121, 5, 86.82
PLAIN_HTTP = "warn"  # on loopback, plain http is allowed by init's config: a warning, never a pass
EXPECTED = {
    "pre_release": {
        "pass": {
            "test_all_tests_passing",  # 121 passed, its 5 skips allowed (quality.tests.max_skipped)
            "test_technical_documentation",  # README.md, CHANGELOG.md, SECURITY.md
            "test_release_notes",  # CHANGELOG.md has 7.0.1
            "test_security_documentation",  # SECURITY.md: IRC, or "bugs-ihatemoney “@” antipoul.fr"
        },
        "fail": {
            "test_code_coverage",  # 86.82 %, its code without tests and migrations
            "test_security_scan",  # bandit: B704 markupsafe.Markup (forms.py, run.py); run.py's app.run(debug=True)
        },
        PLAIN_HTTP: {"test_data_protection"},  # CSP, nosniff, X-Frame-Options, Referrer-Policy from flask-talisman
    },
    "pre_deploy": {"pass": {"test_backup_current_system"}},  # pg_dump, restored into a scratch database and compared
    "post_deploy": {
        "pass": {
            "test_check_logs_for_errors",  # gunicorn's log since the deploy: no error
            "test_health_checks[post_deploy]",  # /healthcheck and SELECT 1
        },
        PLAIN_HTTP: {"test_data_protection"},
    },
    "monitoring": {"pass": {"test_monitor_system_health"}},
}


@pytest.fixture(scope="module")
def service(runtime, tmp_path_factory):
    installed(flask_python(), "I Hate Money (.flask-venv)", "RELCHECK_REQUIRE_FLASK")
    with contextlib.closing(IHateMoney(runtime, tmp_path_factory.mktemp("flask"))) as service:
        yield service


def filled_in(service: IHateMoney, previous: str = PREVIOUS) -> dict:
    """What the operator adds after `relcheck init` (the keys its summary names)."""
    return {
        "release": {"previous_version": previous},
        "target": {
            "python": service.python,  # the service's virtualenv (outside its tree)
            "admin_dsn": "env:IHM_ADMIN_DSN",
            # gunicorn's own log: "[2026-12-04 18:50:00 +0000] [pid] [INFO] ..."
            "service": {
                "log_file": str(service.log),
                "log_timestamp": r"^\[([^]]+)\]",
                "log_time_format": "%Y-%m-%d %H:%M:%S %z",
            },
        },
        "quality": {
            "tests": {
                "command": [
                    "{python}",
                    "-m",
                    "pytest",
                    "ihatemoney/tests",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-k",
                    NEEDS_DNS,
                ],
                "max_skipped": 5,  # its own skips, each with its reason ("Currency conversion is broken", ...)
            }
        },
        "deploy": {  # how `flask db` finds its database: the deployment's settings file, which reads these
            "env": settings_env(service)
        },
        "post_deploy": {"since": service.started},  # deployed without `relcheck deploy`: when it was
    }


def settings_env(service: IHateMoney) -> dict:
    """What the deployment's settings file reads: the database (the one the step works on) and the secret key."""
    return {
        "IHATEMONEY_SETTINGS_FILE_PATH": str(service.settings),
        "IHATEMONEY_DATABASE_URI": "{dsn}",
        "IHATEMONEY_SECRET_KEY": "env:IHM_SECRET_KEY",
    }


def secrets(service: IHateMoney) -> dict:
    return {"RELCHECK_TARGET_DSN": service.dsn, "IHM_ADMIN_DSN": service.admin_dsn, "IHM_SECRET_KEY": SECRET_KEY}


def initialized(
    service: IHateMoney, work: Path, source: Path | None = None, version: str = VERSION, previous: str = PREVIOUS
) -> Path:
    """`relcheck init` in the operator's own directory, then the operator's additions: the config."""
    work.mkdir()
    init = subprocess.run(
        [str(RELCHECK), "init", "--base-url", service.base_url, "--source", str(source or service.tree), "--dsn",
         service.dsn, "--release-version", version],
        cwd=work, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert init.returncode == 0 and "Traceback" not in init.stderr, init.stderr
    config = work / "relcheck.toml"
    return runner.write_config(runner.merge(runner.read_config(config), filled_in(service, previous)), config)


def evidence_of(work: Path, phase: str, check: str) -> dict:
    evidence = json.loads(next((work / "reports").glob(f"*/{phase}*/evidence.json")).read_text())
    return {e["title"]: e for e in evidence[check]}


def test_init_writes_flask_migrates_commands_and_no_route_that_redirected(service, tmp_path):
    written = runner.read_config(initialized(service, tmp_path / "ops"))
    flask = ["{python}", "-m", "flask", "--app", "ihatemoney.run:create_app", "db"]
    assert written["deploy"]["migrate"] == [*flask, "upgrade", "-d", "ihatemoney/migrations"]
    assert written["deploy"]["downgrade"] == [*flask, "downgrade", "-d", "ihatemoney/migrations", "{previous_head}"]
    assert written["deploy"]["schema_version_query"] == "SELECT version_num FROM alembic_version"
    assert written["docs"]["migration_head"][-1] == "ihatemoney/migrations"
    assert written["quality"]["tests"]["env"] == {"TESTING_SQLALCHEMY_DATABASE_URI": "{scratch_dsn}"}
    assert written["quality"]["tests"]["command"][3] == "ihatemoney/tests"
    # /health, /version, /metrics answer its login page through a redirect: none is taken for the route
    assert written["target"]["routes"]["health"] == "/healthcheck"
    assert written["target"]["routes"]["version"] == written["target"]["routes"]["metrics"] == ""


RELCHECK = Path(sys.executable).parent / "relcheck"


def test_init_then_every_phase_on_ihatemoney(service, tmp_path):
    work = tmp_path / "ops"
    initialized(service, work)
    env = secrets(service)
    for phase, expected in EXPECTED.items():
        manifest = phase_as_expected(RELCHECK, work, phase, env, expected, HEALTHY_DECISIONS[phase])
        statuses = statuses_of(manifest)
        if phase == "pre_release":
            tests = dict(
                evidence_of(work, phase, "checks/test_code_quality.py::test_all_tests_passing")["Results"]["facts"]
            )
            assert (tests["passed"], tests["skipped"]) == (str(PASSED), str(SKIPPED)), tests
            assert statuses["test_code_coverage"][1] == f"coverage {TRUE_COVERAGE:.2f} % does not exceed 95 %"


def with_a_service_manager(config: Path, host: SystemdHost, service: IHateMoney) -> None:
    """The deployment runs it as a systemd unit (the rollback's stop and start): systemctl on its host, emulated;
    the previous release's code starts from its own virtualenv on the rehearsal's copy, its critical paths walked."""
    managed = {"manager": "systemd", "unit": "ihatemoney.service", "command_prefix": host.prefix}
    previous = [previous_python(), "-m", "gunicorn", "--bind", "{host}:{port}", "ihatemoney.wsgi:application"]
    paths = [{"name": "health", "path": "/healthcheck", "expect": 200}, {"name": "home", "path": "/", "expect": 200}]
    additions = {
        "target": {"service": managed},
        "deploy": {"previous_start": previous, "previous_env": settings_env(service)},
        "post_deploy": {"critical_paths": paths},
    }
    runner.write_config(runner.merge(runner.read_config(config), additions), config)


def test_the_down_migration_is_rehearsed_through_flask_db_downgrade(service, tmp_path):
    """7.0.1 over 6.1.5: the backup restored into a scratch copy, `flask db upgrade`, `flask db downgrade
    927ed575acbd`, `flask db upgrade` there, each step at its alembic_version, the live database untouched; 6.1.5's
    code (its own virtualenv) started on the copy: it does not start on 7.0.1's schema (its start-up migration does
    not know 06884b17c50f) — but its version is readable nowhere, so which rollback is safe is not verified.
    7.2.1 over 7.0.1 (its tree, the same live database): its down-migration turns project.logging_preference into a
    VARCHAR its upgrade cannot cast back to the loggingmode enum on PostgreSQL: the plan fails with the cause."""
    installed(previous_python(), "I Hate Money 6.1.5 (.flask-venv/previous)", "RELCHECK_REQUIRE_FLASK")
    host = SystemdHost(tmp_path / "app1", {"ihatemoney.service": True})
    items = ["-k", "test_backup_current_system or test_prepare_rollback_plan"]
    work = tmp_path / "ops"
    with_a_service_manager(initialized(service, work), host, service)
    output, manifest = run_phase(RELCHECK, work, "pre_deploy", secrets(service), *items)
    assert "Traceback" not in output and manifest, output[-3000:]
    statuses = statuses_of(manifest)
    assert statuses["test_backup_current_system"] == ("pass", ""), statuses
    # I Hate Money answers its version nowhere relcheck can read (no version route, header or OpenAPI), so nothing
    # shows that 6.1.5's virtualenv really ran 6.1.5: which rollback is safe is not verified, never guessed
    status, reason = statuses["test_prepare_rollback_plan"]
    assert status == "not verified", statuses
    unknown = "could not tell that deploy.previous_start started the previous release (its version not read: no "
    assert reason.startswith("which rollback is safe is not verified: " + unknown + "version source"), reason
    steps = evidence_of(work, "pre_deploy", "checks/test_pre_deploy.py::test_prepare_rollback_plan")
    rows = steps["Down-migration rehearsal (scratch copy)"]["rows"]
    migrations = [r for r in rows if r[0].startswith(("upgrade", "downgrade"))]  # the migration steps among them
    assert [r[0].split(":")[0] for r in migrations] == [
        "upgrade to the release head", f"downgrade to {HEADS[PREVIOUS]}", "upgrade again"
    ]  # fmt: skip
    assert "db downgrade -d ihatemoney/migrations 927ed575acbd" in migrations[1][0]
    assert all(r[2].endswith("live schema unchanged") for r in migrations), rows

    next_tree = repository(tmp_path / "next" / "ihatemoney", (VERSION, NEXT))
    work = tmp_path / "ops-next"
    with_a_service_manager(initialized(service, work, next_tree, NEXT, VERSION), host, service)
    output, manifest = run_phase(RELCHECK, work, "pre_deploy", secrets(service), *items)
    assert "Traceback" not in output and manifest, output[-3000:]
    status, reason = statuses_of(manifest)["test_prepare_rollback_plan"]
    assert status == "fail" and "upgrade again failed" in reason and "DatatypeMismatch" in reason, reason
