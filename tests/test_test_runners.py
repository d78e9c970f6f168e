"""The target's tests beyond pytest (unittest, Django: JUnit from relcheck's own runner, the target installs
nothing), the test databases a framework derives from the scratch name, and coverage as the project defines it."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import psycopg
import pytest

from relcheck.probes import testsuite
from relcheck.target import scratch
from relcheck.target.environment import command_env

SUITE = """
import unittest

class Chart(unittest.TestCase):
    def test_ok(self):
        self.assertTrue(True)
{broken}
"""
BROKEN = """
    def test_wrong_sign(self):
        self.assertEqual("leo", "virgo")

    def test_boom(self):
        raise RuntimeError("no ephemeris")

    @unittest.skip("needs a printer")
    def test_print(self):
        pass

    def test_each_house(self):
        for house in range(2):
            with self.subTest(house=house):
                self.assertEqual(house, 0)
"""


def run_unittest(tree: Path, *args: str, runner: str = "unittest") -> testsuite.TestRun:
    command = [sys.executable, "-m", "unittest", *args] if runner == "unittest" else [sys.executable, *args]
    return testsuite.run(
        command, tree, command_env({}), tree / ".work", 60, "--junitxml={junit}", True, True, [], runner=runner
    )


def suite(tmp_path: Path, broken: str = "") -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    (tmp_path / "tests" / "test_chart.py").write_text(SUITE.format(broken=broken))
    return tmp_path


def test_a_passing_unittest_suite_is_read_from_relcheck_s_runner(tmp_path):
    run = run_unittest(suite(tmp_path), "discover", "-s", "tests", "-t", ".")
    assert not run.error and run.returncode == 0
    assert "--junitxml" not in " ".join(run.command) and "relcheck_junit" in run.command
    assert (run.junit.tests, run.junit.passed, run.junit.failed) == (1, 1, [])
    assert run.coverage and run.coverage.percent == 100.0


def test_a_failing_unittest_suite_names_each_failure_error_and_skip_reason(tmp_path):
    run = run_unittest(suite(tmp_path, BROKEN), "discover", "-s", "tests", "-t", ".")
    junit = run.junit
    assert (junit.tests, junit.failures, junit.errors, junit.skipped, junit.passed) == (5, 2, 1, 1, 1)
    assert {(f.name, f.kind, f.message) for f in junit.failed} == {
        ("tests.test_chart.Chart::test_wrong_sign", "failure", "AssertionError: 'leo' != 'virgo'"),
        ("tests.test_chart.Chart::test_boom", "error", "RuntimeError: no ephemeris"),
        ("tests.test_chart.Chart::test_each_house", "failure", "AssertionError: 1 != 0"),
    }
    assert [(s.name, s.message) for s in junit.skips] == [("tests.test_chart.Chart::test_print", "needs a printer")]


def test_a_runner_that_produces_no_results_is_not_verified_with_the_reason(tmp_path):
    unittest_run = run_unittest(tmp_path, "discover", "-s", "no_such_dir")
    assert unittest_run.junit is None
    assert unittest_run.error.startswith("the unittest runner produced no results (exit status 1): ImportError")
    (tmp_path / "manage.py").write_text("import django\n")  # a Django project whose environment has no Django
    django_run = run_unittest(tmp_path, "manage.py", "test", runner="django")
    assert django_run.error.startswith("the django runner produced no results (exit status 1): ModuleNotFoundError")
    assert "No module named 'django'" in django_run.error


def test_only_pytest_is_given_junitxml():
    junit = Path("/w/junit.xml")
    assert testsuite.with_runner(["py", "-m", "pytest"], "pytest", junit, "--junitxml={junit}") == [
        "py", "-m", "pytest", "--junitxml=/w/junit.xml"
    ]  # fmt: skip
    assert testsuite.with_runner(["py", "manage.py", "test", "hc"], "django", junit, "--junitxml={junit}") == [
        "py", "manage.py", "test", "hc", "--testrunner=relcheck_junit.DjangoRunner", "--keepdb"
    ]  # fmt: skip
    with pytest.raises(testsuite.ToolError, match=r'runner = "unittest" needs .*"-m", "unittest"'):
        testsuite.with_runner(["py", "-m", "pytest"], "unittest", junit, "")
    env = testsuite.runner_env({"PYTHONPATH": "src"}, "django", junit)
    assert env["PYTHONPATH"] == f"{testsuite.RUNNERS}:src" and env["RELCHECK_JUNIT"] == str(junit)


def coverage_json(path: Path, files: dict[str, tuple[int, int, int, int]]) -> Path:
    """coverage.py's JSON report: file -> (statements, covered lines, branches, covered branches)."""

    def summary(n, covered, branches, covered_branches):
        percent = 100.0 * (covered + covered_branches) / (n + branches)
        return {
            "num_statements": n,
            "covered_lines": covered,
            "num_branches": branches,
            "covered_branches": covered_branches,
            "missing_lines": n - covered,
            "percent_covered": percent,
        }

    sums = [sum(v[i] for v in files.values()) for i in range(4)]
    data = {"files": {f: {"summary": summary(*v)} for f, v in files.items()}, "totals": summary(*sums)}
    path.write_text(json.dumps(data))
    return path


MEASURED = {
    "hc/api/models.py": (90, 81, 10, 9),  # 90 %
    "hc/api/tests/test_models.py": (60, 60, 0, 0),
    "hc/api/migrations/0001_initial.py": (40, 40, 0, 0),
    "manage.py": (10, 0, 0, 0),
}


def test_coverage_that_counts_tests_and_migrations_shows_the_figure_without_them(tmp_path):
    report = testsuite.read_coverage(coverage_json(tmp_path / "c.json", MEASURED), True, [], ".coveragerc")
    assert report.percent == 90.48  # (81 + 9 + 60 + 40) / (90 + 10 + 60 + 40 + 10)
    assert report.tests_and_migrations == ["hc/api/migrations/0001_initial.py", "hc/api/tests/test_models.py"]
    assert report.percent_without_them == 81.82  # (81 + 9) / (90 + 10 + 10)
    assert report.definition == ".coveragerc"


def test_quality_coverage_omit_leaves_files_out_of_the_figure(tmp_path):
    omit = ["*/tests/*", "*/migrations/*", "manage.py"]
    report = testsuite.read_coverage(coverage_json(tmp_path / "c.json", MEASURED), True, omit)
    assert report.percent == 90.0 and report.statements == 90
    assert report.omitted == ["hc/api/migrations/0001_initial.py", "hc/api/tests/test_models.py", "manage.py"]
    assert report.tests_and_migrations == [] and report.percent_without_them is None
    assert testsuite.read_coverage(tmp_path / "c.json", True, ["*"]) is None  # nothing left: no coverage data


@pytest.mark.parametrize(
    "name, text, found",
    [
        (".coveragerc", "[run]\nomit = */migrations/*\n", ".coveragerc"),
        ("setup.cfg", "[metadata]\nname = hc\n[coverage:run]\nsource = hc\n", "setup.cfg"),
        ("tox.ini", "[tox]\nenvlist = py311\n", ""),  # no coverage section
        ("pyproject.toml", "[tool.coverage.report]\nomit = ['*/tests/*']\n", "pyproject.toml"),
    ],
)
def test_the_project_s_own_coverage_definition_is_named(tmp_path, name, text, found):
    (tmp_path / name).write_text(text)
    assert testsuite.coverage_definition(tmp_path) == found


def databases(runtime) -> set[str]:
    with psycopg.connect(runtime.pg.admin_dsn("postgres"), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def create_unmarked(runtime, *names: str) -> None:
    with psycopg.connect(runtime.pg.admin_dsn("postgres"), autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')


def test_django_s_test_databases_go_with_their_scratch_database(healthy, runtime):
    with scratch.scratch_database(healthy, "unit") as made:
        test_db = scratch.create_derived(healthy, made)
        assert test_db.name == f"test_{made.name}" and test_db.parts.user == made.parts.user
        create_unmarked(runtime, f"{test_db.name}_1", f"{test_db.name}_2")  # --parallel 2 clones it
    assert not {n for n in databases(runtime) if made.name in n}


def test_test_databases_a_killed_run_left_are_swept_by_their_derived_names(healthy, runtime):
    gone = f"{scratch.PREFIX}19990101000000_1_tests"  # the run that made it was killed outright
    orphans = [f"test_{gone}", f"test_{gone}_1"]
    create_unmarked(runtime, *orphans, "test_analytics")
    with scratch.scratch_database(healthy, "unit") as in_use:
        create_unmarked(runtime, f"test_{in_use.name}")  # a run going on: its test database stays
        assert sorted(scratch.sweep(healthy)) == orphans
        left = databases(runtime)
        assert f"test_{in_use.name}" in left and "test_analytics" in left and not left & set(orphans)
    with psycopg.connect(runtime.pg.admin_dsn("postgres"), autocommit=True) as conn:
        conn.execute('DROP DATABASE "test_analytics"')


def test_init_writes_django_s_runner_its_scratch_variables_and_what_coverage_counts(tmp_path):
    from relcheck.discovery import tree, writer

    files = {
        "manage.py": "",
        "blog/__init__.py": "",
        "blog/settings/local.py": 'import os\nNAME = os.environ["POSTGRES_DB"]\nHOST = os.environ["POSTGRES_HOST"]\n'
        'USER = os.environ["POSTGRES_USER"]\nPASSWORD = os.environ["POSTGRES_PASSWORD"]\n',
        "home/__init__.py": "",
        "home/tests.py": "",
        "home/migrations/0001_initial.py": "",
        "search/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = tree.discover(tmp_path)
    assert (found.runner, found.tests, found.migrations) == ("django", "home", "django")
    draft = writer.Draft()
    writer._quality_and_security(draft, found)
    written = tomllib.loads("\n".join(draft.lines))["quality"]
    assert written["tests"] == {
        "runner": "django",
        "command": ["{python}", "manage.py", "test"],
        "env": {
            "POSTGRES_DB": "{scratch_db}",
            "POSTGRES_HOST": "{scratch_host}",
            "POSTGRES_USER": "{scratch_user}",
            "POSTGRES_PASSWORD": "{scratch_password}",
        },
    }  # fmt: skip  (no prepare: Django migrates its test database itself)
    assert written["coverage"] == {"source": ["blog", "home", "search"], "omit": writer.NOT_COUNTED}
    assert [writer.scratch_value(v) for v in ("DATABASE_URL", "KUNDLI_DB_URL", "PGHOST", "DB_NAME")] == [
        "{scratch_dsn}", "{scratch_dsn}", "{scratch_host}", "{scratch_db}"
    ]  # fmt: skip
    (tmp_path / "setup.cfg").write_text("[coverage:report]\nomit = */migrations/*\n")  # the project's own
    draft = writer.Draft()
    writer._quality_and_security(draft, tree.discover(tmp_path))
    assert "omit" not in tomllib.loads("\n".join(draft.lines))["quality"]["coverage"]
