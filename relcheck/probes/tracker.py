"""Open critical issues of a release, from GitHub issues or a tracker export (GitHub-format JSON, or CSV)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from relcheck.core.statuses import NotVerified
from relcheck.probes.github import GitHub


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


def read_export(path: Path) -> list[Issue]:
    if not path.is_file():
        raise NotVerified(f"tracker export {path} not found")
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [
                Issue(
                    row.get("number", ""),
                    row.get("title", ""),
                    row.get("state", "").lower(),
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
    """Open issues with any of the labels (GitHub ANDs a labels list, so one query per label)."""
    params = {"state": "open"}
    if milestone:
        numbers = [m["number"] for m in client.get_all("milestones", {"state": "all"}) if m["title"] == milestone]
        if not numbers:
            raise NotVerified(f"GitHub repository {client.repo} has no milestone {milestone!r}")
        params["milestone"] = numbers[0]
    found: dict[str, Issue] = {}
    for label in labels:
        for raw in client.get_all("issues", {**params, "labels": label}):
            issue = from_github_json(raw)
            found[issue.number] = issue
    return list(found.values())


def blocking(issues: list[Issue], labels: list[str], milestone: str) -> list[Issue]:
    wanted = {label.lower() for label in labels}
    found = [
        i
        for i in issues
        if i.state == "open"
        and not i.is_pull_request
        and (not milestone or i.milestone == milestone)
        and wanted & {label.lower() for label in i.labels}
    ]
    return sorted(found, key=lambda i: (len(i.number), i.number))
