"""The service log since a moment: a file (lines carry a leading ISO-8601 timestamp; continuation lines such as
traceback frames belong to the line before) or the systemd journal of a unit. One interface, two backends."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from relcheck.core.errors import ToolError
from relcheck.core.statuses import NotVerified
from relcheck.target import remote

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)")


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


MAX_BYTES = 64 * 2**20  # a log is read from at most its last 64 MiB ...
MAX_JOURNAL_LINES = 500_000  # ... a journal from at most its last 500,000 entries


def tail(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The end of a file, from its first whole line within the last max_bytes."""
    with path.open("rb") as log:
        size = log.seek(0, 2)
        log.seek(max(0, size - max_bytes))
        data = log.read()
    if size > max_bytes:
        data = data.split(b"\n", 1)[-1]
    return data.decode("utf-8", errors="replace")


def file_lines(path: Path, since: datetime | None) -> list[str]:
    lines, keep = [], since is None
    for line in tail(path).splitlines():
        stamp = _STAMP.match(line)
        if stamp:
            keep = since is None or _moment(stamp.group(1)) >= since
        if keep:
            lines.append(line)
    return lines


def journal_lines(unit: str, since: datetime | None, prefix: list[str], timeout: float = 60) -> list[str]:
    command = [
        "journalctl",
        "-u",
        unit,
        "--no-pager",
        "--quiet",
        "-o",
        "short-iso",
        "-n",
        str(MAX_JOURNAL_LINES),
    ]
    if since:
        command += ["--since", f"@{int(since.timestamp())}"]
    if prefix:
        command = remote.through(prefix, command)[0]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"journalctl for {unit}: {type(exc).__name__}") from None
    if result.returncode != 0:
        raise ToolError(f"journalctl -u {unit} failed: {result.stderr.strip()[:200]}")
    return [line for line in result.stdout.splitlines() if not line.startswith("-- ")]  # "-- No entries --"


class FileLog:
    """The service logs to a file readable from here.

    lines = target.log.lines(since=deploy_started)
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def _readable(self) -> Path:
        if not self.path.is_file():
            raise NotVerified(f"no service log at {self.path}")
        return self.path

    def lines(self, since: datetime | None = None) -> list[str]:
        return file_lines(self._readable(), since)

    def position(self) -> int:
        return self._readable().stat().st_size

    def lines_after(self, position: int) -> list[str]:
        with self._readable().open(encoding="utf-8", errors="replace") as log:
            log.seek(position)
            return log.read().splitlines()


class JournalLog:
    """The service logs to the systemd journal of its unit (journalctl, optionally on the service host)."""

    def __init__(self, unit: str, prefix: list[str]) -> None:
        self.unit, self.prefix = unit, prefix

    def describe(self) -> str:
        return f"journal of {self.unit}"

    def lines(self, since: datetime | None = None) -> list[str]:
        return journal_lines(self.unit, since, self.prefix)

    def position(self) -> datetime:
        return datetime.now(timezone.utc) - timedelta(seconds=5)  # allow for clock skew with the service host

    def lines_after(self, position: datetime) -> list[str]:
        return self.lines(since=position)


class NoLog:
    """No log configured: every read is not verified, never an empty (clean) log."""

    def describe(self) -> str:
        return "none"

    def lines(self, since: datetime | None = None) -> list[str]:
        raise NotVerified("no service log configured (target.service.log_file or journal_unit)")

    position = lines_after = lines


def service_log(service, log_file: Path | None):
    """The log of the service: its unit's journal when target.service.journal_unit is set, else its log file."""
    if service.journal_unit:
        return JournalLog(service.journal_unit, service.command_prefix)
    return FileLog(log_file) if log_file else NoLog()


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
            found.append(Problem(line, lines[index + 1 : index + 4]))
    return found
