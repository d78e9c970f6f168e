"""Run the target's own test suite once, under coverage.py, and read its JUnit XML and coverage data. pytest writes
JUnit itself (`--junitxml`); unittest and Django suites run with relcheck's own small runner (data/runners), put on
their PYTHONPATH, so the target installs nothing."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from relcheck.core.errors import ToolError
from relcheck.core.secrets import redact


@dataclass
class FailedCase:
    name: str
    kind: str  # "failure" or "error"
    message: str


@dataclass
class JUnitSummary:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    failed: list[FailedCase] = field(default_factory=list)
    skips: list[FailedCase] = field(default_factory=list)  # kind "skipped", the message its reason

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


@dataclass
class FileCoverage:
    path: str
    percent: float
    missing_lines: int
    covered: int = 0  # lines + branches, coverage.py's own units for its total
    measured: int = 0
    statements: int = 0


@dataclass
class CoverageSummary:
    percent: float
    branch: bool
    statements: int
    files: list[FileCoverage]
    definition: str = ""  # the project's coverage configuration file ("" when it has none)
    omitted: list[str] = field(default_factory=list)  # files left out by quality.coverage.omit
    tests_and_migrations: list[str] = field(default_factory=list)  # measured files that are tests or migrations
    percent_without_them: float | None = None


ERROR_LINE = re.compile(r"\b[A-Z]\w*(Error|Exception)\b:?.*|\berror: .*|\bERROR\b.*")


def first_error(output: str) -> str:
    """The first line of a test run's output that names an error (an ImportError, a refused connection ...);
    pytest's own "E   " lines (the exception itself) first."""
    lines = output.splitlines()
    for line in [line for line in lines if line.startswith("E ")] + lines:
        found = ERROR_LINE.search(line)
        if found:
            return found.group(0).strip()[:200]
    last = [line.strip() for line in lines if line.strip()]
    return last[-1][:200] if last else ""  # e.g. "python: No module named pytest"


@dataclass
class TestRun:
    command: list[str]
    returncode: int | None
    duration_s: float
    output_tail: str
    junit: JUnitSummary | None = None
    coverage: CoverageSummary | None = None
    error: str = ""
    scratch: str = ""  # the scratch database the tests were given ("" when none)
    scratch_effect: str = ""  # what they left there ("" when nothing: they did not use it)
    live_changes: list[str] = field(default_factory=list)  # how the live schema moved meanwhile
    live_writes: str = ""  # rows written to the live database meanwhile (its traffic included)

    @property
    def started(self) -> bool:
        """Whether the tests ran at all (coverage of a run that never started measures nothing)."""
        return not self.error and self.junit is not None and self.junit.passed + self.junit.failures > 0

    def first_problem(self) -> str:
        """The first failing test with its message, else the first error line of the output."""
        if self.junit and self.junit.failed:
            first = self.junit.failed[0]
            return f"{first.name}: {first.message}" if first.message else first.name
        return first_error(self.output_tail)


def problem_message(problem) -> str:
    """A failure's message; for a generic one ("collection failure") the first error its text names."""
    message = (problem.get("message") or "").strip().splitlines()
    first = message[0][:300] if message else ""
    return first if ERROR_LINE.search(first) else first_error(problem.text or "") or first


def read_junit(path: Path) -> JUnitSummary | None:
    if not path.is_file():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    summary = JUnitSummary()
    for suite in suites:
        for attr in ("tests", "failures", "errors", "skipped"):
            setattr(summary, attr, getattr(summary, attr) + int(suite.get(attr, 0)))
        for case in suite.iter("testcase"):
            for kind in ("failure", "error"):
                problem = case.find(kind)
                if problem is not None:
                    name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
                    summary.failed.append(FailedCase(name, kind, problem_message(problem)))
            skip = case.find("skipped")
            if skip is not None:
                name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
                summary.skips.append(FailedCase(name, "skipped", (skip.get("message") or "").strip()[:300]))
    return summary


RUNNERS = str(resources.files("relcheck").joinpath("data", "runners"))  # relcheck's, never counted as the target's
COVERAGE_FILES = (".coveragerc", "setup.cfg", "tox.ini", "pyproject.toml")  # coverage.py's own search order
TEST_OR_MIGRATION = (
    "*/tests/*",
    "*/test/*",
    "*/migrations/*",
    "*/test_*.py",
    "*/*_test.py",
    "*/tests.py",
    "*/conftest.py",
)


def coverage_definition(cwd: Path) -> str:
    """The file where the project defines its coverage (coverage.py reads it from the working directory), or ""."""
    for name in COVERAGE_FILES:
        path = cwd / name
        if path.is_file() and (
            name == ".coveragerc" or re.search(r"^\[(coverage:|tool\.coverage)", path.read_text(errors="replace"), re.M)
        ):
            return name
    return ""


def matches(path: str, patterns) -> bool:
    """coverage.py's file patterns (fnmatch) over the path as reported, also with a leading "/" so "*/tests/*"
    matches a top-level tests/ directory."""
    return any(fnmatch.fnmatch(p, pattern) for pattern in patterns for p in (path, "/" + path.lstrip("/")))


def total(files: list[FileCoverage]) -> float:
    measured = sum(f.measured for f in files)
    return round(100.0 * sum(f.covered for f in files) / measured, 2) if measured else 100.0


def read_coverage(path: Path, branch: bool, omit: Sequence[str] = (), definition: str = "") -> CoverageSummary | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    totals = data.get("totals", {})
    if not data.get("files") or "percent_covered" not in totals:
        return None
    files = [
        FileCoverage(
            name,
            round(counts["percent_covered"], 2),
            counts["missing_lines"],
            counts["covered_lines"] + counts.get("covered_branches", 0),
            counts["num_statements"] + counts.get("num_branches", 0),
            counts["num_statements"],
        )
        for name, counts in ((name, info["summary"]) for name, info in data["files"].items())
        if not name.startswith(RUNNERS)
    ]
    omitted = sorted(f.path for f in files if matches(f.path, omit))
    kept = sorted((f for f in files if f.path not in omitted), key=lambda f: (f.percent, f.path))
    if not kept:
        return None
    summary = CoverageSummary(total(kept), branch, sum(f.statements for f in kept), kept, definition, omitted)
    summary.tests_and_migrations = [f.path for f in kept if matches(f.path, TEST_OR_MIGRATION)]
    if summary.tests_and_migrations:
        summary.percent_without_them = total([f for f in kept if f.path not in summary.tests_and_migrations])
    return summary


def with_runner(command: list[str], runner: str, junit: Path, junit_option: str) -> list[str]:
    """The command that writes JUnit to junit: pytest's own option; relcheck's runner for unittest and Django
    (put on PYTHONPATH by runner_env)."""
    if runner == "pytest":
        return [*command, junit_option.format(junit=junit)]
    if runner == "unittest":
        if command[1:3] != ["-m", "unittest"]:
            raise ToolError(
                'quality.tests.runner = "unittest" needs quality.tests.command [PYTHON, "-m", "unittest", ...]'
            )
        return [command[0], "-m", "relcheck_junit", *command[3:]]
    if "test" not in command[1:4]:
        raise ToolError(
            'quality.tests.runner = "django" needs quality.tests.command [PYTHON, "manage.py", "test", ...]'
        )
    # --keepdb: Django uses the test database relcheck made (and keeps it for the scratch proof; relcheck drops it)
    return [*command, "--testrunner=relcheck_junit.DjangoRunner", "--keepdb"]


def runner_env(env: dict, runner: str, junit: Path) -> dict:
    if runner == "pytest":
        return env
    path = os.pathsep.join(p for p in (RUNNERS, env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": path, "RELCHECK_JUNIT": str(junit)}


def under_coverage(command: list[str], data_file: Path, branch: bool, source: list[str]) -> list[str]:
    """`python -m MODULE args` -> `python -m coverage run ... -m MODULE args` (a script such as manage.py likewise)."""
    if len(command) < 2 or (command[1] != "-m" and not command[1].endswith(".py")) or command[1:] == ["-m"]:
        raise ToolError(
            'quality.tests.command must be [PYTHON, "-m", MODULE, ...] (or [PYTHON, SCRIPT.py, ...]) '
            "to run under coverage"
        )
    wrapped = [command[0], "-m", "coverage", "run", f"--data-file={data_file}"]
    if branch:
        wrapped.append("--branch")
    if source:
        wrapped.append(f"--source={','.join(source)}")
    return wrapped + command[1:]


def run(
    command: list[str],
    cwd: Path,
    env: dict,
    workdir: Path,
    timeout: float,
    junit_option: str,
    coverage: bool,
    branch: bool,
    source: list[str],
    runner: str = "pytest",
    omit: Sequence[str] = (),
) -> TestRun:
    """Run the suite with exactly env (see environment.command_env); never raises for a failing suite, only records
    what happened."""
    workdir.mkdir(parents=True, exist_ok=True)
    junit, data_file, cov_json = workdir / "junit.xml", workdir / ".coverage", workdir / "coverage.json"
    for stale in (junit, data_file, cov_json):
        stale.unlink(missing_ok=True)
    with_junit = with_runner(command, runner, junit, junit_option)
    full = under_coverage(with_junit, data_file, branch, source) if coverage else with_junit
    started = time.monotonic()
    try:
        result = subprocess.run(
            full, cwd=cwd, env=runner_env(env, runner, junit), capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        return TestRun(full, None, 0.0, "", error=f"command not found: {full[0]} (quality.tests.command)")
    except subprocess.TimeoutExpired as exc:
        raw = (exc.stdout or b"")[-2000:]  # bytes even with text=True (POSIX)
        tail = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        return TestRun(
            full,
            None,
            timeout,
            redact(tail),
            error=f"test suite did not finish within {timeout:g}s (quality.tests.timeout_s)",
        )
    duration = time.monotonic() - started
    output = redact((result.stdout + result.stderr)[-4000:])
    run_result = TestRun(full, result.returncode, duration, output, junit=read_junit(junit))
    tools = command[2:3] if command[1:2] == ["-m"] else []  # the runner module ...
    tools += ["coverage"] if coverage else []  # ... and coverage around it
    missing = [tool for tool in tools if re.search(rf"No module named '?{re.escape(tool)}'?$", output, re.M)]
    if run_result.junit is None and missing:
        run_result.error = (
            f"the test runner could not start: {command[0]}: No module named {missing[0]} "
            "(quality.tests.command, quality.tests.python)"
        )
    elif run_result.junit is None and runner != "pytest":  # relcheck's runner never got to write its results
        run_result.error = (
            f"the {runner} runner produced no results (exit status {result.returncode}): {first_error(output)} "
            "(quality.tests.command, quality.tests.env)"
        )
    if coverage and data_file.exists():
        subprocess.run(
            [command[0], "-m", "coverage", "json", f"--data-file={data_file}", "-o", str(cov_json)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        run_result.coverage = read_coverage(cov_json, branch, omit, coverage_definition(cwd))
    return run_result
