"""The checklist document as data: sections and items, parsed from the seed markdown.

Items are the `- [ ]` checkboxes, the rollback triggers and the emergency contacts. A section is addressed by its
path ("Pre-Release Verification / Code Quality") or, where unambiguous, by its last part ("Code Quality").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

SEED = "release-checklist-v1.0.0.md"
_HEADING = re.compile(r"^(#{2,3})\s+(?:\d+\.\s+)?(.+?)\s*$")
_CHECKBOX = re.compile(r"^- \[[ xX]\]\s+(.+?)\s*$")
_BULLET = re.compile(r"^- (.+?)\s*$")

# The run (phase marker) each section belongs to, for reporting items that have no check yet.
SECTION_PHASES = {
    "Pre-Release Verification / Code Quality": "code_quality",
    "Pre-Release Verification / Performance Verification": "performance",
    "Pre-Release Verification / Security Checks": "security",
    "Pre-Release Verification / Documentation": "documentation",
    "Deployment Procedure / Pre-Deployment": "pre_deploy",
    "Deployment Procedure / Post-Deployment": "post_deploy",
    "Rollback Procedure / Rollback Triggers": "rollback",
    "Rollback Procedure / Post-Rollback": "post_rollback",
    "Monitoring / System Health": "monitoring",
    "Monitoring / Application Metrics": "monitoring",
    "Monitoring / Business Metrics": "monitoring",
    "Release Sign-off / Technical Sign-off": "signoff",
    "Release Sign-off / Business Sign-off": "signoff",
    "Release Sign-off / Final Approval": "signoff",
    "Post-Release Tasks / Monitoring": "post_release",
    "Post-Release Tasks / Documentation": "post_release",
    "Post-Release Tasks / Communication": "post_release",
    "Emergency Contacts / Technical Team": "pre_deploy",
    "Emergency Contacts / Business Team": "pre_deploy",
    "Emergency Contacts / Support Team": "pre_deploy",
}


class ChecklistError(LookupError):
    """A check names a section or item the checklist does not have."""


@dataclass(frozen=True)
class Item:
    section: str  # "Part / Section"
    text: str
    kind: str  # "check", "trigger" or "contact"

    @property
    def key(self) -> str:
        return f"{self.section} :: {self.text}"

    @property
    def phase(self) -> str:
        return SECTION_PHASES.get(self.section, "")


@dataclass
class Checklist:
    title: str
    version: str
    items: list[Item] = field(default_factory=list)

    @property
    def sections(self) -> list[str]:
        return list(dict.fromkeys(item.section for item in self.items))

    def resolve_section(self, name: str) -> str:
        """Full section path for a full path or an unambiguous last part."""
        if name in self.sections:
            return name
        matches = [s for s in self.sections if s.split(" / ")[-1] == name]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ChecklistError(f"checklist has no section {name!r}")
        raise ChecklistError(f"section {name!r} is ambiguous, say one of: {', '.join(matches)}")

    def find(self, section: str, text: str) -> Item:
        full = self.resolve_section(section)
        for item in self.items:
            if item.section == full and item.text == text:
                return item
        raise ChecklistError(f"checklist section {full!r} has no item {text!r}")


def parse(markdown: str) -> Checklist:
    title, version = "", ""
    part = section = ""
    items: list[Item] = []
    for line in markdown.splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
            continue
        if line.startswith("Version:"):
            version = line.split(":", 1)[1].strip()
            continue
        heading = _HEADING.match(line)
        if heading:
            level, name = heading.groups()
            if level == "##":
                part, section = name, ""
            else:
                section = name
            continue
        if not section:
            continue
        path = f"{part} / {section}"
        checkbox, bullet = _CHECKBOX.match(line), _BULLET.match(line)
        if checkbox:
            items.append(Item(path, checkbox.group(1), "check"))
        elif section == "Rollback Triggers" and bullet:
            items.append(Item(path, bullet.group(1), "trigger"))
        elif part == "Emergency Contacts" and bullet:
            items.append(Item(path, bullet.group(1).split(":", 1)[0].strip(), "contact"))
    return Checklist(title, version, items)


@cache
def figure(text: str) -> float:
    """The threshold an item's wording states: "Code coverage >95%" -> 95.0 (0 when it states none)."""
    found = re.search(r"[>≥]\s*(\d+(?:\.\d+)?)\s*%", text)
    return float(found.group(1)) if found else 0.0


def load(path: str | None = None) -> Checklist:
    """The checklist the suite maps against: the shipped seed, or another file."""
    text = (
        Path(path).read_text(encoding="utf-8")
        if path
        else resources.files("relcheck").joinpath("data", SEED).read_text(encoding="utf-8")
    )
    return parse(text)
