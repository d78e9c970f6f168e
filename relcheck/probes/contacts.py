"""Emergency contacts from the target's contacts document ("- Role: who, how" lines under section headings)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r"^\s*[-*]\s+([^:]+):\s*(.+?)\s*$")
_HEADING = re.compile(r"^#{2,}\s+(.+?)\s*$")
REACHABLE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+|\+?\d[\d ()-]{6,}\d")


@dataclass
class Contact:
    section: str
    role: str
    who: str

    @property
    def reachable(self) -> bool:
        """Names an e-mail address or a phone number, not a placeholder."""
        return "[contact]" not in self.who.lower() and bool(REACHABLE.search(self.who))


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
