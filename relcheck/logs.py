"""The service log since a moment: a file (lines carry a leading ISO-8601 timestamp; continuation lines such as
traceback frames belong to the line before) or the systemd journal of a unit."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import ToolError

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)")


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def file_lines(path: Path, since: datetime | None) -> list[str]:
    lines, keep = [], since is None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stamp = _STAMP.match(line)
        if stamp:
            keep = since is None or _moment(stamp.group(1)) >= since
        if keep:
            lines.append(line)
    return lines


def journal_lines(unit: str, since: datetime | None, prefix: list[str], timeout: float = 60) -> list[str]:
    command = [*prefix, "journalctl", "-u", unit, "--no-pager", "--quiet", "-o", "short-iso"]
    if since:
        command += ["--since", f"@{int(since.timestamp())}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"journalctl for {unit}: {type(exc).__name__}") from None
    if result.returncode != 0:
        raise ToolError(f"journalctl -u {unit} failed: {result.stderr.strip()[:200]}")
    return [line for line in result.stdout.splitlines() if not line.startswith("-- ")]  # "-- No entries --"


@dataclass
class Problem:
    line: str
    context: list[str]


def problems(lines: list[str], patterns: list[str], allowed: list[str]) -> list[Problem]:
    """Lines matching an error pattern and no allow-list entry, with the lines that follow them (tracebacks)."""
    wanted, tolerated = [re.compile(p) for p in patterns], [re.compile(a) for a in allowed]
    found = []
    for index, line in enumerate(lines):
        if any(p.search(line) for p in wanted) and not any(a.search(line) for a in tolerated):
            found.append(Problem(line, lines[index + 1:index + 4]))
    return found
