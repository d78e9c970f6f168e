"""Open critical issues of a release, from GitHub issues or a tracker export (GitHub-format JSON, or CSV). An
issue's milestone is matched as a version (v1.1.0 = 1.1.0); one without a milestone counts for every release; states
are compared case-insensitively. An export is evidence only while it is fresh: its age is its last commit's in the
target's own repository when committed unchanged, else the file's modification time."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from relcheck.core.statuses import NotVerified
from relcheck.core.versions import same_version
from relcheck.probes.github import GitHub
from relcheck.target import commands

OPEN_STATES = {"open", "opened", "reopened", "new", "to do", "todo", "in progress"}
CLOSED_STATES = {"closed", "done", "resolved"}


@dataclass
class Issue:
    number: str
    title: str
    state: str
    labels: list[str]
    milestone: str
    url: str
    is_pull_request: bool = False


@dataclass
class Query:
    source: str
    milestone: str
    labels: list[str]
    blocking: list[Issue]
    taken: str = ""  # when the export's data is from, and how that is known ("": read live)


def from_github_json(raw: dict) -> Issue:
    return Issue(
        str(raw.get("number", "")),
        raw.get("title", ""),
        raw.get("state", ""),
        [label["name"] if isinstance(label, dict) else str(label) for label in raw.get("labels", [])],
        (raw.get("milestone") or {}).get("title", ""),
        raw.get("html_url", ""),
        "pull_request" in raw,
    )


def export_taken(path: Path, repository: Path) -> tuple[datetime, str]:
    """When an export was taken: its last commit in the target's own repository when committed unchanged, else the
    file's modification time (a checkout's mtime says nothing of a committed file's age)."""
    if (repository / ".git").exists() and path.resolve().is_relative_to(repository.resolve()):
        relative = str(path.resolve().relative_to(repository.resolve()))

        def git(*args: str) -> commands.CommandResult:
            return commands.run(["git", "-C", str(repository), *args, "--", relative], timeout=30)

        changed, commit = git("status", "--porcelain"), git("log", "-1", "--format=%cI")
        if changed.ok and not changed.stdout.strip() and commit.stdout.strip():
            return datetime.fromisoformat(commit.stdout.strip()), "its last commit"
    return datetime.fromtimestamp(path.stat().st_mtime, UTC), "the file's modification time"


def fresh(path: Path, repository: Path, max_age_days: float, now: datetime | None = None) -> str:
    """When the export is from (shown); a stale export is not verified, naming the key."""
    taken, how = export_taken(path, repository)
    age = ((now or datetime.now(UTC)) - taken).total_seconds() / 86400
    when = f"{taken.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({how})"
    if age > max_age_days:
        raise NotVerified(
            f"tracker export {path.name} is stale: {age:.0f} days old, from {when}, more than {max_age_days:g} "
            "(re-export it, or raise quality.tracker.max_age_days)"
        )
    return when


def read_export(path: Path) -> list[Issue]:
    if not path.is_file():
        raise NotVerified(f"tracker export {path} not found")
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [
                Issue(
                    row.get("number", ""),
                    row.get("title", ""),
                    row.get("state", ""),
                    [label.strip() for label in row.get("labels", "").split(";") if label.strip()],
                    row.get("milestone", ""),
                    row.get("url", ""),
                )
                for row in csv.DictReader(handle)
            ]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise NotVerified(f"tracker export {path.name} is not valid JSON ({exc})") from None
    return [from_github_json(raw) for raw in data]


def read_github(client: GitHub, labels: list[str], milestone: str) -> list[Issue]:
    """Open issues with any of the labels (GitHub ANDs a labels list, so one query per label), in the release's
    milestones (matched as versions) and in none."""
    scopes: list[dict] = [{}]
    if milestone:
        numbers = [
            m["number"] for m in client.get_all("milestones", {"state": "all"}) if same_version(m["title"], milestone)
        ]
        if not numbers:
            raise NotVerified(f"GitHub repository {client.repo} has no milestone {milestone!r}")
        scopes = [{"milestone": n} for n in [*numbers, "none"]]
    found: dict[str, Issue] = {}
    for label in labels:
        for scope in scopes:
            for raw in client.get_all("issues", {"state": "open", **scope, "labels": label}):
                issue = from_github_json(raw)
                found[issue.number] = issue
    return list(found.values())


def is_open(issue: Issue) -> bool:
    """Open or closed, whatever the tracker's casing; a state that is neither is not verified (never ignored)."""
    state = issue.state.strip().lower()
    if state not in OPEN_STATES | CLOSED_STATES:
        raise NotVerified(
            f"issue #{issue.number} has state {issue.state!r}, neither open ({', '.join(sorted(OPEN_STATES))}) "
            f"nor closed ({', '.join(sorted(CLOSED_STATES))})"
        )
    return state in OPEN_STATES


def blocking(issues: list[Issue], labels: list[str], milestone: str) -> list[Issue]:
    """The open issues with a blocking label in the release's milestone, or in none (they apply to every release)."""
    wanted = {label.lower() for label in labels}
    found = [
        i
        for i in issues
        if not i.is_pull_request
        and wanted & {label.lower() for label in i.labels}
        and (not milestone or not i.milestone or same_version(i.milestone, milestone))
        and is_open(i)
    ]
    return sorted(found, key=lambda i: (len(i.number), i.number))
