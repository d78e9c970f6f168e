"""Run the target's own test suite once, under coverage.py, and read its JUnit XML and coverage data."""

from __future__ import annotations

import json
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
                    summary.failed.append(
                        FailedCase(
                            name,
                            kind,
                            (problem.get("message") or "").splitlines()[0][:300] if problem.get("message") else "",
                        )
                    )
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
        return TestRun(full, None, 0.0, "", error=f"command not found: {full[0]}")
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"")[-2000:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        return TestRun(full, None, timeout, redact(tail), error=f"test suite did not finish within {timeout:g}s")
    duration = time.monotonic() - started
    output = redact((result.stdout + result.stderr)[-4000:])
    run_result = TestRun(full, result.returncode, duration, output, junit=read_junit(junit))
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
