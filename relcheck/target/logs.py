"""The service log since a moment: a file (lines carry a leading timestamp, target.service.log_timestamp; continuation
lines such as traceback frames belong to the line before) or the systemd journal of a unit. One interface, two
backends. Every reader takes the log of this release through since_deploy: from the deploy, never the whole file."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from relcheck.core.errors import RelcheckError
from relcheck.core.files import write_json
from relcheck.core.statuses import NotVerified
from relcheck.target import commands

MAX_BYTES = 64 * 2**20  # a log is read from at most its last 64 MiB ...
MAX_JOURNAL_LINES = 500_000  # ... a journal from at most its last 500,000 entries


@dataclass(frozen=True)
class Line:
    number: int  # in the file (from 1); in a journal, counted from the window's start
    text: str
    at: datetime | None = None  # its entry's time (a continuation line's: the line's it continues); None: unknown


@dataclass
class Reading:
    lines: list[Line]
    timestamps: str  # how the lines' times were read, for the evidence


def host_zone() -> str:
    """This host's time zone by name (TZ, else /etc/localtime's zoneinfo path, else its abbreviation)."""
    link = Path("/etc/localtime")
    named = str(link.resolve()).partition("zoneinfo/")[2] if link.is_symlink() else ""
    return os.environ.get("TZ", "").lstrip(":") or named or str(datetime.now().astimezone().tzname())


class Stamps:
    """How a log file's lines carry their time: target.service.log_timestamp (a regex whose first group is the
    timestamp), log_time_format (strptime; "" = ISO 8601) and log_timezone for timestamps without an offset."""

    def __init__(self, service) -> None:
        self.pattern = re.compile(service.log_timestamp)
        self.format = service.log_time_format
        self.zone = ZoneInfo(service.log_timezone) if service.log_timezone else None
        self.zone_name = service.log_timezone or host_zone()

    def moment(self, line: str) -> tuple[datetime, bool] | None:
        """The line's time (aware) and whether it was naive; None for a line without one (a continuation)."""
        match = self.pattern.search(line)
        if not match:
            return None
        try:
            moment = datetime.strptime(match[1], self.format) if self.format else datetime.fromisoformat(match[1])
        except ValueError:
            return None
        return self.aware(moment), moment.tzinfo is None

    def aware(self, moment: datetime) -> datetime:
        """A naive moment read in the log's zone (log_timezone, else this host's: astimezone's reading)."""
        if moment.tzinfo:
            return moment
        return moment.replace(tzinfo=self.zone) if self.zone else moment.astimezone()

    def described(self, naive: bool) -> str:
        if not naive:
            return "with their UTC offsets"
        if self.zone:
            return f"naive, read as {self.zone_name} (target.service.log_timezone)"
        return f"naive, read as this host's zone {self.zone_name} (target.service.log_timezone unset)"


def tail(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The end of a file, from its first whole line within the last max_bytes."""
    return numbered_tail(path, max_bytes)[1]


def numbered_tail(path: Path, max_bytes: int = MAX_BYTES) -> tuple[int, str]:
    """tail() and the line number (from 1) of its first line in the file."""
    with path.open("rb") as log:
        size = log.seek(0, 2)
        cut = max(0, size - max_bytes)
        log.seek(cut)
        data = log.read()
        if not cut:
            return 1, data.decode("utf-8", errors="replace")
        log.seek(0)
        before = 0  # the lines before the cut, counted 1 MiB at a time
        while log.tell() < cut:
            before += log.read(min(2**20, cut - log.tell())).count(b"\n")
    data = data.partition(b"\n")[2]
    return before + 2, data.decode("utf-8", errors="replace")  # the line cut in two is dropped


def file_lines(path: Path, since: datetime, stamps: Stamps) -> Reading:
    """The lines from the first one stamped at or after since (a continuation line follows its line's fate)."""
    first, text = numbered_tail(path)
    lines, keep, stamped, naive, entry = [], False, 0, False, None
    for number, line in enumerate(text.splitlines(), first):
        stamp = stamps.moment(line)
        if stamp:
            stamped, keep, naive, entry = stamped + 1, stamp[0] >= since, naive or stamp[1], stamp[0]
        if keep:
            lines.append(Line(number, line, entry))
    if text.strip() and not stamped:
        raise NotVerified(
            f"no line of {path} starts with a timestamp as target.service.log_timestamp"
            f"{' and log_time_format' if stamps.format else ''} describe: its times cannot be read"
        )
    return Reading(lines, stamps.described(naive) if stamped else "none (an empty log)")


def journal_lines(unit: str, since: datetime, prefix: list[str], timeout: float = 60) -> list[str]:
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
        "--since",
        f"@{int(since.timestamp())}",
    ]
    result = commands.run(command, prefix=prefix, timeout=timeout).raise_for(f"journalctl -u {unit}")
    return [line for line in result.stdout.splitlines() if not line.startswith("-- ")]  # "-- No entries --"


class FileLog:
    """The service logs to a file readable from here.

    lines = target.log.read(since=deploy_started).lines
    """

    def __init__(self, path: Path, stamps: Stamps) -> None:
        self.path, self.stamps = path, stamps

    def describe(self) -> str:
        return str(self.path)

    def ready(self) -> Path:
        if not self.path.is_file():
            raise NotVerified(f"no service log at {self.path}")
        return self.path

    def read(self, since: datetime) -> Reading:
        return file_lines(self.ready(), since, self.stamps)

    def position(self) -> int:
        return self.ready().stat().st_size

    def lines_after(self, position: int) -> list[str]:
        with self.ready().open(encoding="utf-8", errors="replace") as log:
            log.seek(position)
            return log.read().splitlines()


def journal_time(line: str) -> datetime | None:
    """A journal line's time (journalctl -o short-iso: "2026-12-04T00:07:52+0530 host unit[1]: ...")."""
    try:
        return datetime.fromisoformat(line.split(" ", 1)[0])
    except ValueError:
        return None


class JournalLog:
    """The service logs to the systemd journal of its unit (journalctl, optionally on the service host)."""

    def __init__(self, unit: str, prefix: list[str]) -> None:
        self.unit, self.prefix = unit, prefix

    def describe(self) -> str:
        return f"journal of {self.unit}"

    def ready(self) -> None:
        """journalctl says on reading whether it can."""

    def read(self, since: datetime) -> Reading:
        lines = journal_lines(self.unit, since, self.prefix)
        entries = [Line(n, t, journal_time(t)) for n, t in enumerate(lines, 1)]
        return Reading(entries, "the journal's own (journalctl --since)")

    def position(self) -> datetime:
        return datetime.now(timezone.utc) - timedelta(seconds=5)  # allow for clock skew with the service host

    def lines_after(self, position: datetime) -> list[str]:
        return journal_lines(self.unit, position, self.prefix)


class NoLog:
    """No log configured: every read is not verified, never an empty (clean) log."""

    def describe(self) -> str:
        return "none"

    def ready(self, *_) -> list[str]:
        raise NotVerified("no service log configured (target.service.log_file or journal_unit)")

    read = position = lines_after = ready


def service_log(service, log_file: Path | None):
    """The log of the service: its unit's journal when target.service.journal_unit is set, else its log file."""
    if service.journal_unit:
        return JournalLog(service.journal_unit, service.command_prefix)
    return FileLog(log_file, Stamps(service)) if log_file else NoLog()


def window(deploy_started: datetime | None, config, service) -> tuple[datetime, str]:
    """Where the log of this release starts, and who says so: its deploy record, else post_deploy.since, else the
    service manager's start of the service. Unknown: not verified, never the whole log."""
    if deploy_started:
        return deploy_started, "the deploy record (relcheck deploy)"
    if config.post_deploy.since:
        return config.post_deploy.since, "post_deploy.since"
    try:
        started = service.started()
    except RelcheckError as exc:
        started, why = None, f" ({exc})"
    else:
        why = ""
    if started:
        return started, f"the service's start ({service.manager})"
    raise NotVerified(
        "the deploy time is unknown: no deploy record of this release (relcheck deploy), post_deploy.since unset, "
        f"and the service manager ({service.manager}) does not say when the service started{why}: "
        "set post_deploy.since"
    )


@dataclass
class Excerpt:
    source: str
    since: datetime
    since_from: str  # who says the window starts there
    lines: list[Line]
    timestamps: str


def since_deploy(target, deploy_started: datetime | None) -> Excerpt:
    """The one window every reader of the service log uses: the log of this release (see window)."""
    target.log.ready()
    since, origin = window(deploy_started, target.config, target.service)
    reading = target.log.read(since)
    return Excerpt(target.log.describe(), since, origin, reading.lines, reading.timestamps)


@dataclass
class Problem:
    line: Line
    context: list[Line]


def problems(lines: list[Line], patterns: list[str], allowed: list[str]) -> list[Problem]:
    """Lines matching an error pattern and no allow-list entry, with the lines that follow them (tracebacks)."""
    wanted, tolerated = [re.compile(p) for p in patterns], [re.compile(a) for a in allowed]
    found = []
    for index, line in enumerate(lines):
        if any(p.search(line.text) for p in wanted) and not any(a.search(line.text) for a in tolerated):
            found.append(Problem(line, lines[index + 1 : index + 4]))
    return found


OWN_SLACK_S = 1.0  # a log stamped to the second, and a little clock skew between relcheck and the service host


@dataclass(frozen=True)
class OwnRequest:
    """A request of relcheck's own that the service answered 5xx (`relcheck init`'s probes of guessed routes, the
    conformance run's generated cases): the error it logged meanwhile is relcheck's doing, not the release's."""

    method: str
    route: str
    status: int
    sent: float  # Unix times
    answered: float
    by: str = ""  # who sent it (the record's): "relcheck init", "the conformance run (Schemathesis)"

    def caused(self, line: Line) -> bool:
        """Whether the line was logged while the request was in flight (within OWN_SLACK_S)."""
        at = line.at.timestamp() if line.at else None
        return at is not None and self.sent - OWN_SLACK_S <= at <= self.answered + OWN_SLACK_S

    @property
    def shown(self) -> str:
        sent = datetime.fromtimestamp(self.sent, timezone.utc).isoformat(timespec="milliseconds")
        by = f", {self.by}" if self.by else ""
        return f"{self.method} {self.route} (HTTP {self.status}, sent {sent}{by})"


def write_own_requests(path: Path, base_url: str, by: str, requests: list[OwnRequest]) -> None:
    """The one record of relcheck's own requests that answered 5xx, for the log check to read (own_requests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    listed = [{k: v for k, v in dataclasses.asdict(r).items() if k != "by"} for r in requests]
    write_json(path, {"base_url": base_url.rstrip("/"), "by": by, "requests": listed})


def own_requests(records: list[Path], base_url: str = "") -> list[OwnRequest]:
    """The requests relcheck's records (post_deploy.init_record, the runs' records under the release's
    own-requests/) list; a record of requests to another base URL (a scratch instance relcheck started) excuses
    nothing in this service's log. Missing records list none."""
    found = []
    for record in records:
        if not record.is_file():
            continue
        try:
            data = json.loads(record.read_text())
            if base_url and data.get("base_url", base_url).rstrip("/") != base_url.rstrip("/"):
                continue
            by = str(data.get("by", "relcheck init"))
            found += [OwnRequest(**{**r, "by": by}) for r in data["requests"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise NotVerified(f"{record}: not a record of relcheck's own requests ({type(exc).__name__})") from None
    return found


def relchecks(found: list[Problem], own: list[OwnRequest]) -> tuple[list[Problem], list[tuple[Problem, OwnRequest]]]:
    """The error lines split into the release's and those logged while one of relcheck's own requests that answered
    5xx was in flight (with that request)."""
    theirs, caused = [], []
    for problem in found:
        request = next((r for r in own if r.caused(problem.line)), None)
        if request:
            caused.append((problem, request))
        else:
            theirs.append(problem)
    return theirs, caused
