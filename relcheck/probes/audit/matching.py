"""Does an OSV `affected` entry cover a version? PEP 440 everywhere: the `versions` list (4.2.0rc1 equals 4.2rc1)
and ECOSYSTEM ranges with any number of introduced / fixed / last_affected / limit events. A bound that is not a
PEP 440 version cannot be compared: the range counts as affecting, and the match says why."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version


@dataclass
class Match:
    affected: bool
    note: str = ""  # e.g. an unparseable bound that made the match conservative


def parse(text: str) -> Version | None:
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


def affects(affected: dict, version: str) -> Match:
    pinned = parse(version)
    if pinned is None:
        return Match(version in affected.get("versions", []), f"{version} is not a PEP 440 version")
    for listed in affected.get("versions", []) or []:
        if parse(str(listed)) == pinned:
            return Match(True)
    for found in (in_range(pinned, r) for r in affected.get("ranges", []) or [] if r.get("type") == "ECOSYSTEM"):
        if found.affected:
            return found
    return Match(False)


def in_range(version: Version, ecosystem_range: dict) -> Match:
    """OSV's evaluation: events in version order; introduced opens, fixed/limit close before, last_affected after."""
    events, unparseable = [], []
    for event in ecosystem_range.get("events", []) or []:
        for kind, value in event.items():
            bound = Version("0") if kind == "introduced" and str(value) == "0" else parse(str(value))
            if bound is None:
                unparseable.append(f"{kind} {value!r}")
            else:
                events.append((bound, kind))
    if unparseable:
        return Match(True, "unparseable bound " + ", ".join(unparseable) + ": treated as affected")
    affected = False
    for bound, kind in sorted(events, key=lambda e: e[0]):
        if kind == "introduced" and version >= bound:
            affected = True
        elif kind in ("fixed", "limit") and version >= bound:
            affected = False
        elif kind == "last_affected" and version > bound:
            affected = False
    return Match(affected)
