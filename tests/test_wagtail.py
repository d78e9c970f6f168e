"""A Django service nobody here wrote (the site `wagtail start` generates, tests/wagtail_target.py): its tests run
by Django's own runner (`manage.py test`) with results through relcheck's runner, in Django's test_<scratch>
database, under coverage as the project defines it; the live database untouched, nothing left on the server (also
after an interrupt), no false pass, no traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from shop import SCRATCH_ENV
from wagtail_target import WagtailSite, wagtail_python

from conftest import installed, run_phase, statuses_of
from relcheck.run import runner
from relcheck.target.service import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wagtail")]  # one site, set up once
ITEMS = ["-k", "test_all_tests_passing or test_code_coverage"]
# What is true of the generated site (Wagtail 8.0.1): home/tests.py has 4 tests, all passing; it has no coverage
# configuration, and coverage.py (branch) over what its tests run measures 79.43 % with its tests and migrations,
# 73.40 % without them: `coverage report --precision=2 [--omit='*/tests.py,*/migrations/*']` after the same run.
TRUE_COVERAGE, WITHOUT_TESTS = 79.43, 73.40


@pytest.fixture(scope="module")
def site(runtime, tmp_path_factory):
    installed(wagtail_python(), "Wagtail (.wagtail-venv)", "RELCHECK_REQUIRE_WAGTAIL")
    site = WagtailSite(runtime, tmp_path_factory.mktemp("wagtail") / "blog")
    yield site
    site.stop()


def configured(site: WagtailSite, work: Path, **coverage) -> Path:
    """The operator's config for the site's code-quality items (README "A Django service")."""
    config = {
        "release": {"product": "blog", "version": "1.0.0"},
        "target": {
            "mode": "remote",
            "base_url": site.base_url,
            "dsn": "env:SITE_DSN",
            "admin_dsn": "env:SITE_ADMIN_DSN",
            "source": str(site.tree),
            "python": site.python,
            "service": {"manager": "none"},
            "routes": {"health": "/", "version": "", "metrics": "", "openapi": ""},  # its home page
        },
        "quality": {
            "tests": {"runner": "django", "command": ["{python}", "manage.py", "test"], "env": SCRATCH_ENV},
            "coverage": coverage,
        },
    }
    return runner.write_config(config, work / "relcheck.toml")


def scratch_databases(site: WagtailSite) -> list[str]:
    with psycopg.connect(site.admin_dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE '%relcheck\\_scratch\\_%'")
        return [r[0] for r in rows]


def test_the_sites_tests_pass_and_its_coverage_fails_with_the_true_figures(site, tmp_path):
    env = {"SITE_DSN": site.dsn, "SITE_ADMIN_DSN": site.admin_dsn}
    configured(site, tmp_path)
    output, manifest = run_phase(Path(sys.executable).parent / "relcheck", tmp_path, "pre_release", env, *ITEMS)
    assert "Traceback" not in output and manifest, output[-3000:]
    statuses = statuses_of(manifest)
    assert statuses["test_all_tests_passing"] == ("pass", ""), statuses
    assert statuses["test_code_coverage"] == ("fail", f"coverage {TRUE_COVERAGE:.2f} % does not exceed 95 %")
    evidence = json.loads(next((tmp_path / "reports").glob("*/pre_release*/evidence.json")).read_text())
    tests, coverage = (
        {e["title"]: dict(e.get("facts", [])) for e in evidence[f"checks/test_code_quality.py::{name}"]}
        for name in ("test_all_tests_passing", "test_code_coverage")
    )
    assert tests["Results"]["tests"] == tests["Results"]["passed"] == "4"
    assert tests["Isolation"]["scratch database"].startswith("test_relcheck_scratch_")  # Django's, made by relcheck
    measured = coverage["Test files and migrations measured"]
    assert measured["total without them"].startswith(f"{WITHOUT_TESTS:.2f} %") and "home/tests.py" in measured["files"]
    assert not scratch_databases(site)


def test_an_interrupted_django_test_run_leaves_no_database_behind(site, tmp_path):
    """A test of the site that says it runs (HELD) and holds the run until STOP appears, which happens only after the
    signal: relcheck is stopped while Django works in test_<scratch>; the run's databases are all dropped."""
    held, stop = tmp_path / "HELD", tmp_path / "STOP"
    (site.tree / "home" / "test_held.py").write_text(
        "import pathlib, time\nfrom django.test import TestCase\n\n"
        "class Held(TestCase):\n    def test_held(self):\n"
        f"        pathlib.Path({str(held)!r}).write_text('')\n"
        f"        while not pathlib.Path({str(stop)!r}).exists():\n            time.sleep(0.1)\n"
    )
    configured(site, tmp_path)
    env = {**os.environ, "SITE_DSN": site.dsn, "SITE_ADMIN_DSN": site.admin_dsn}
    run = subprocess.Popen(
        [str(Path(sys.executable).parent / "relcheck"), "run", "pre_release", "--", "-p", "no:randomly", *ITEMS],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        assert wait_until(held.exists, timeout=300)  # the held test runs inside Django's test database now
        assert any(name.startswith("test_relcheck_scratch_") for name in scratch_databases(site))
        os.kill(run.pid, signal.SIGTERM)
        assert run.wait(timeout=60) != 0
    finally:
        stop.write_text("")
        (site.tree / "home" / "test_held.py").unlink()
    assert wait_until(lambda: not scratch_databases(site), timeout=30), scratch_databases(site)
