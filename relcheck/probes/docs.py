"""Documentation evidence: the OpenAPI contract against the live service, document completeness, release notes,
and guides that must name what the code does (settings, error codes, migration head, deploy commands)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from relcheck.core.statuses import require
from relcheck.core.versions import same_version
from relcheck.probes.openapi_diff import Contract, Difference, change_text, differences, drift_text, version_bump

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


# --- OpenAPI -------------------------------------------------------------------------------------------------
@dataclass
class Baseline:
    """The previous release's committed OpenAPI document as a contract, or why there is none."""

    release: str
    contract: Contract | None = None
    missing: str = ""
    expected: bool = False  # a previous release is configured: without its document, breaking changes are unjudged


@dataclass
class ApiReview:
    """The committed document against the served one (every difference) and the previous release's against the
    served one (each change breaking or additive), with the API version bump that allows breaking changes and the
    release-notes entries that may name (and so announce) them."""

    drift: list[Difference]
    changes: list[Difference] | None  # None: not compared
    bump: str = ""
    notes: list[str] = field(default_factory=list)  # this release's entries, when they may announce a change

    @property
    def breaking(self) -> list[Difference]:
        return [c for c in self.changes or [] if c.breaking]

    @property
    def unannounced(self) -> list[Difference]:
        """Breaking changes no release-notes entry names."""
        return [c for c in self.breaking if not names(self.notes, c)]

    @property
    def breaking_labels(self) -> list[str]:
        return [f"{c.where}: {change_text(c)}" for c in self.breaking]

    @property
    def unannounced_labels(self) -> list[str]:
        return [f"{c.where}: {change_text(c)}" for c in self.unannounced]

    @property
    def drift_rows(self) -> list[tuple[str, str, str]]:
        return [(d.operation, d.location or "operation", drift_text(d)) for d in self.drift]

    @property
    def drift_labels(self) -> list[str]:
        return [f"{d.where}: {drift_text(d)}" for d in self.drift]

    @property
    def change_rows(self) -> list[tuple[str, str, str, str]]:
        return [(c.operation, c.location or "operation", change_text(c), self._kind(c)) for c in self.changes or []]

    def _kind(self, change: Difference) -> str:
        if not change.breaking:
            return "additive"
        if self.bump:
            return f"breaking, allowed by the version bump ({self.bump})"
        return "breaking, named in the release notes" if names(self.notes, change) else "breaking"


def names(entries: list[str], change: Difference) -> bool:
    """Whether a release-notes entry names the change: a property or parameter change its name in backticks
    (`nakshatra`, `planets[].name`, `limit`), any other change its operation ("DELETE /v1/kundli/{chart_id}")."""
    if change.path:
        subjects = {change.path, re.split(r"[.\[{]", change.path.rstrip("[]{}"))[-1]}
        return any(f"`{s}`" in entry for entry in entries for s in subjects)
    if change.location.startswith("parameter "):
        return any(f"`{change.location.split(':', 1)[-1]}`" in entry for entry in entries)
    return any(change.operation in entry for entry in entries)


def review_api(
    committed: Contract, served: Contract, previous: Contract | None, version_prefix: str, notes: list[str]
) -> ApiReview:
    if previous is None:
        return ApiReview(differences(committed, served), None)
    return ApiReview(
        differences(committed, served),
        differences(previous, served),
        version_bump(previous.doc, served.doc, version_prefix),
        notes,
    )


# --- documents -----------------------------------------------------------------------------------------------
@dataclass
class DocProblem:
    document: str
    problem: str

    @property
    def identity(self) -> tuple[str, str]:
        """The same problem in another release: its document and text, not the line it is on."""
        return self.document, re.sub(r"^line \d+: ", "", self.problem)

    @property
    def label(self) -> str:
        return f"{self.document}: {self.problem}"


def placeholder_patterns(words: list[str]) -> dict[str, re.Pattern]:
    return {w: re.compile(re.escape(w) if not w[0].isalnum() else rf"\b{re.escape(w)}\b") for w in words}


def completeness(root: Path, required: list[str], placeholders: list[str]) -> tuple[list[DocProblem], list[str]]:
    """Problems in the required documents (missing, empty, placeholders, broken relative links); files checked."""
    problems, checked = [], []
    patterns = placeholder_patterns(placeholders)
    for name in required:
        path = root / name
        if not path.is_file():
            problems.append(DocProblem(name, "missing"))
            continue
        checked.append(name)
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.strip():
            problems.append(DocProblem(name, "empty"))
        for number, line in enumerate(text.splitlines(), 1):
            for word, pattern in patterns.items():
                if pattern.search(line):
                    problems.append(DocProblem(name, f"line {number}: placeholder {word}: {line.strip()[:80]}"))
        for target in _LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            linked = (path.parent / target.split("#", 1)[0]).resolve()
            if not linked.exists():
                problems.append(DocProblem(name, f"broken link: {target}"))
    return problems, checked


def document(root: Path, relative: str, key: str) -> str | None:
    """The text of the document docs.<key> names under the source tree; None when the file does not exist."""
    require(relative, f"docs.{key} is not configured")
    path = root / relative
    return path.read_text(encoding="utf-8") if path.is_file() else None


def words_in(text: str, pattern: str) -> set[str]:
    regex = re.compile(pattern)
    return {m.group(1) if regex.groups else m.group(0) for m in regex.finditer(text)}


def scan_tree(root: Path, paths: list[str], pattern: str, suffixes=(".py",)) -> dict[str, list[str]]:
    """name -> files where the pattern occurs, over the given files or directories."""
    found: dict[str, list[str]] = {}
    for rel in paths:
        base = root / rel
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.suffix in suffixes)
        for file in files:
            for name in words_in(file.read_text(encoding="utf-8", errors="replace"), pattern):
                found.setdefault(name, []).append(str(file.relative_to(root)))
    return found


# --- release notes -------------------------------------------------------------------------------------------
@dataclass
class ReleaseNotes:
    found: bool
    date: str = ""
    entries: list[str] = field(default_factory=list)
    heading: str = ""


HEADING = re.compile(r"^##\s*\[?(?P<version>[^\]\s(:,;]+)\]?(?P<rest>.*)$", re.M)


def release_notes(changelog: str, version: str) -> ReleaseNotes:
    """The section of a Keep-a-Changelog style file for one version (matched exactly, as a PEP 440 version): its
    heading, date and entries."""
    match = next((m for m in HEADING.finditer(changelog) if same_version(m["version"], version)), None)
    if not match:
        return ReleaseNotes(False)
    body = changelog[match.end() :]
    following = re.search(r"^##\s", body, re.M)
    body = body[: following.start()] if following else body
    date = re.search(r"\d{4}-\d{2}-\d{2}", match.group("rest"))
    entries = [line.strip()[2:] for line in body.splitlines() if line.strip().startswith(("- ", "* "))]
    return ReleaseNotes(True, date.group(0) if date else "", entries, match.group(0).strip())
