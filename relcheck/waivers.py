"""Waivers: a finding (or a whole checklist item) accepted for a while, with a reason and an approving role.

    [[waiver]]
    id = "WVR-2026-004"
    finding = "PYSEC-2023-83"            # a finding id or alias; or item = "Security Checks :: Vulnerabilities addressed"
    reason = "path traversal needs StaticFiles, which the service does not mount"
    approver = "Security Team Lead"
    expires = 2027-01-31
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .verdict import NotVerified


@dataclass
class Waiver:
    id: str
    finding: str
    item: str
    reason: str
    approver: str
    expires: date | None
    problems: list[str]

    def state(self, today: date) -> str:
        """"valid", or why the waiver does not count."""
        if self.problems:
            return "; ".join(self.problems)
        if self.expires < today:
            return f"expired on {self.expires.isoformat()}"
        return "valid"

    def covers(self, ids: set[str]) -> bool:
        return bool(self.finding) and self.finding in ids


def load(path: Path, roles: list[str]) -> list[Waiver]:
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise NotVerified(f"waivers file {path.name} is not valid TOML: {exc}") from None
    waivers = []
    for n, raw in enumerate(data.get("waiver", []), 1):
        problems = []
        for key in ("id", "reason", "approver", "expires"):
            if not raw.get(key):
                problems.append(f"no {key}")
        if not (raw.get("finding") or raw.get("item")):
            problems.append("names neither a finding nor an item")
        if raw.get("approver") and raw["approver"] not in roles:
            problems.append(f"approver {raw['approver']!r} is not a release role")
        expires = raw.get("expires")
        if expires is not None and not isinstance(expires, date):
            problems.append("expires is not a date (write expires = 2027-01-31)")
            expires = None
        waivers.append(Waiver(str(raw.get("id", f"#{n}")), str(raw.get("finding", "")), str(raw.get("item", "")),
                              str(raw.get("reason", "")), str(raw.get("approver", "")), expires, problems))
    return waivers


def for_finding(waivers: list[Waiver], ids: set[str]) -> Waiver | None:
    """The waiver naming this finding; a valid one wins over an expired or unapproved one."""
    matching = [w for w in waivers if w.covers(ids)]
    today = date.today()
    return next((w for w in matching if w.state(today) == "valid"), matching[0] if matching else None)
