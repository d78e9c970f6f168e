"""Emergency contacts from the target's contacts document ("- Role: who, how" lines under section headings)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r"^\s*[-*]\s+([^:]+):\s*(.+?)\s*$")
_HEADING = re.compile(r"^#{2,}\s+(.+?)\s*$")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
PHONE = re.compile(r"\+?\d[\d ()./-]{5,}\d")
DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$|^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$")
HANDLE = re.compile(
    r"(?i)\b(?:slack|teams|matrix|chat|pager|pagerduty|opsgenie|on-?call)\b\s*[:#@]?\s*[@#]?[\w.-]{2,}"
    r"|(?<![\w.])[@#][A-Za-z][\w.-]+"
)
PLACEHOLDER = re.compile(r"(?i)\[contact\]|\bTBD\b|\bTODO\b|\bN/?A\b|\bunknown\b|^\W*$")


@dataclass
class Contact:
    section: str
    role: str
    who: str

    @property
    def problem(self) -> str:
        """Why this is not a contact one can reach ("" when it is): a name plus an e-mail address, a phone number
        with at least 7 digits (not a date), or a chat or pager handle; never a placeholder."""
        if PLACEHOLDER.search(self.who):
            return f"{self.who!r} is a placeholder"
        phones = [p for p in PHONE.findall(self.who) if len(re.sub(r"\D", "", p)) >= 7 and not DATE.match(p.strip())]
        channels = EMAIL.findall(self.who) + phones + HANDLE.findall(self.who)
        if not channels:
            return f"{self.who!r} has no e-mail address, phone number or chat/pager handle"
        if not re.search(r"[A-Za-z]{2,}", self.who):
            return f"{self.who!r} names no one"
        return ""


def read(path: Path) -> list[Contact]:
    if not path.is_file():
        return []
    contacts, section = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            section = heading.group(1)
        elif match := _LINE.match(line):
            contacts.append(Contact(section, match.group(1).strip(), match.group(2)))
    return contacts


def find(contacts: list[Contact], section: str, role: str) -> Contact | None:
    return next((c for c in contacts if c.role == role and (c.section == section or not c.section)), None)


def of_release(cfg) -> list[tuple[str, str]]:
    """(role, who) pairs from the target's contacts document, for notices and the report header."""
    return [(c.role, c.who) for c in read(cfg.source / cfg.contacts)] if cfg.contacts else []
