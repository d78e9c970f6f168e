"""Run the target's own test suite once, under coverage.py, and read its JUnit XML and coverage data."""

from __future__ import annotations

import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
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

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


@dataclass
class FileCoverage:
    path: str
    percent: float
    missing_lines: int


@dataclass
class CoverageSummary:
    percent: float
    branch: bool
    statements: int
    files: list[FileCoverage]


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
    return summary


def read_coverage(path: Path, branch: bool) -> CoverageSummary | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    totals = data.get("totals", {})
    if not data.get("files") or "percent_covered" not in totals:
        return None
    files = [
        FileCoverage(name, round(info["summary"]["percent_covered"], 2), info["summary"]["missing_lines"])
        for name, info in data["files"].items()
    ]
    files.sort(key=lambda f: (f.percent, f.path))
    return CoverageSummary(round(totals["percent_covered"], 2), branch, totals.get("num_statements", 0), files)


def under_coverage(command: list[str], data_file: Path, branch: bool, source: list[str]) -> list[str]:
    """`python -m MODULE args` -> `python -m coverage run ... -m MODULE args`."""
    if len(command) < 3 or command[1] != "-m":
        raise ToolError('quality.tests.command must be [PYTHON, "-m", MODULE, ...] to run under coverage')
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
) -> TestRun:
    """Run the suite with exactly env (see environment.command_env); never raises for a failing suite, only records
    what happened."""
    workdir.mkdir(parents=True, exist_ok=True)
    junit, data_file, cov_json = workdir / "junit.xml", workdir / ".coverage", workdir / "coverage.json"
    for stale in (junit, data_file, cov_json):
        stale.unlink(missing_ok=True)
    full = under_coverage(command, data_file, branch, source) if coverage else list(command)
    full.append(junit_option.format(junit=junit))
    started = time.monotonic()
    try:
        result = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
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
    if coverage and data_file.exists():
        subprocess.run(
            [command[0], "-m", "coverage", "json", f"--data-file={data_file}", "-o", str(cov_json)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        run_result.coverage = read_coverage(cov_json, branch)
    return run_result
