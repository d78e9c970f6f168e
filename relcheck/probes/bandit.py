"""A bandit scan of the target's code (JSON output), judged against a severity/confidence threshold and the
target's bandit baseline."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from relcheck.target import commands

LEVELS = ["UNDEFINED", "LOW", "MEDIUM", "HIGH"]


@dataclass
class Finding:
    test_id: str
    test_name: str
    severity: str
    confidence: str
    filename: str
    line: int
    text: str
    cwe: str
    code: str = ""  # the flagged line's source text
    in_baseline: bool = False

    @property
    def id(self) -> str:
        """The id a waiver names: bandit:<test id>:<file>."""
        return f"bandit:{self.test_id}:{self.filename}"

    @property
    def identity(self) -> tuple:
        """The same finding in another release: test, file and the line's text (lines move, text stays)."""
        return self.test_id, self.filename, self.code

    @property
    def label(self) -> str:
        return f"{self.test_id} {self.filename}:{self.line} {self.code or self.text}"

    def key(self) -> tuple:
        """What bandit itself compares to match a baseline (line numbers excluded)."""
        return (self.test_id, self.test_name, self.severity, self.confidence, self.filename, self.text, self.cwe)

    def at_least(self, severity: str, confidence: str) -> bool:
        return LEVELS.index(self.severity) >= LEVELS.index(severity.upper()) and LEVELS.index(
            self.confidence
        ) >= LEVELS.index(confidence.upper())


@dataclass
class Scan:
    command: list[str]
    ran: bool
    error: str = ""
    findings: list[Finding] = field(default_factory=list)
    nosec: int = 0
    files: int = 0
    lines: int = 0
    scan_errors: list[str] = field(default_factory=list)
    baseline: str = ""
    version: str = ""

    @property
    def not_judged(self) -> str:
        """Why its findings cannot be judged ("" when they can): bandit did not run, or its baseline is missing."""
        if not self.ran:
            return f"{self.error} (security.bandit.python: an interpreter with bandit installed)"
        return f"{self.error} (security.bandit.baseline)" if self.error else ""


def _findings(results: list[dict]) -> list[Finding]:
    return [
        Finding(
            r["test_id"],
            r["test_name"],
            r["issue_severity"],
            r["issue_confidence"],
            r["filename"],
            r["line_number"],
            r["issue_text"],
            str((r.get("issue_cwe") or {}).get("id", "")),
            _code_line(r.get("code") or "", r["line_number"]),
        )
        for r in results
    ]


def _code_line(code: str, number: int) -> str:
    """The flagged line's text from bandit's numbered excerpt ("4 def run(c):\n5     return ...")."""
    for line in code.splitlines():
        at, _, text = line.partition(" ")
        if at == str(number):
            return text.strip()
    return ""


def scan(
    source: Path, targets: list[str], baseline: str, workdir: Path, timeout: float, python: str = sys.executable
) -> Scan:
    output = workdir / "bandit.json"
    command = [python, "-m", "bandit", "-r", *targets, "-f", "json", "-o", str(output), "-q"]
    result = commands.run(command, cwd=source, timeout=timeout)
    if result.returncode not in (0, 1) or not output.is_file():  # 1: it found issues
        return Scan(command, False, result.failure("bandit") or "bandit wrote no report")
    try:
        data = json.loads(output.read_text())
    except ValueError as exc:
        return Scan(command, False, f"bandit wrote no readable JSON: {exc}")
    totals = data.get("metrics", {}).get("_totals", {})
    found = Scan(
        command,
        True,
        findings=_findings(data.get("results", [])),
        nosec=int(totals.get("nosec", 0)),
        lines=int(totals.get("loc", 0)),
        files=len([k for k in data.get("metrics", {}) if k != "_totals"]),
        scan_errors=[f"{e.get('filename')}: {e.get('reason')}" for e in data.get("errors", [])],
        version=_bandit_version() if python == sys.executable else f"the one of {python}",
    )
    if baseline:
        path = source / baseline
        if path.is_file():
            known = {f.key() for f in _findings(json.loads(path.read_text()).get("results", []))}
            for finding in found.findings:
                finding.in_baseline = finding.key() in known
            found.baseline = baseline
        else:
            found.error = f"bandit baseline {baseline} not found"
    return found


def _bandit_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("bandit")
    except metadata.PackageNotFoundError:  # pragma: no cover - bandit is a dependency
        return "unknown"
