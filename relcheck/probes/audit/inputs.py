"""What a service pins: requirements files (with -r/-c includes, --hash continuations, option lines) and lockfiles
(poetry.lock, uv.lock, Pipfile.lock, pdm.lock, pylock.toml). Parsed with packaging and tomllib, never a regex.
Only a requirement pinned to exactly one PEP 440 version is audited; everything else is listed as not audited,
with the reason. A file that does not parse is a problem (the audit cannot be trusted)."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

INCLUDES = ("-r", "--requirement", "-c", "--constraint")
EDITABLE = ("-e", "--editable")
LOCKFILES = ("poetry.lock", "uv.lock", "Pipfile.lock", "pdm.lock")


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503)
    version: str
    where: str  # file:line, or lockfile


@dataclass
class Inputs:
    pins: list[Pin] = field(default_factory=list)
    not_audited: list[str] = field(default_factory=list)  # "where: what (why)"
    problems: list[str] = field(default_factory=list)  # files missing or not parsing, pins that do not parse
    files: list[str] = field(default_factory=list)

    @property
    def requirement_files(self) -> list[Path]:
        """The inputs pip reads with -r (pip-audit, pip's resolver): every file but the lockfiles."""
        return [Path(f) for f in self.files if not is_lockfile(Path(f))]

    def add(self, other: Inputs) -> None:
        self.pins += other.pins
        self.not_audited += other.not_audited
        self.problems += other.problems
        self.files += other.files


def read(paths: list[Path]) -> Inputs:
    found = Inputs()
    for path in paths:
        found.add(read_one(path, set()))
    unique = {(p.name, p.version): p for p in found.pins}
    found.pins = list(unique.values())
    return found


def is_lockfile(path: Path) -> bool:
    return path.name in LOCKFILES or path.name == "pylock.toml" or bool(re.fullmatch(r"pylock\.[^.]+\.toml", path.name))


def read_one(path: Path, seen: set[Path]) -> Inputs:
    if not path.is_file():
        return Inputs(problems=[f"{path}: not found"])
    try:
        if is_lockfile(path):
            return lockfile(path)
        return requirements(path, seen)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        return Inputs(problems=[f"{path.name}: does not parse: {str(exc).splitlines()[0]}"], files=[str(path)])


def exact_version(text: str) -> str | None:
    """The version when text is one valid PEP 440 version (no wildcard, no local-arbitrary form)."""
    if "*" in text:
        return None
    try:
        Version(text)
    except InvalidVersion:
        return None
    return text


# --- requirements files ----------------------------------------------------------------------------------------
def logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines joined at trailing backslashes, comments removed, with the number of their first physical line."""
    lines, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined = (pending + line).strip()
        pending = ""
        if joined:
            lines.append((start, joined))
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def requirements(path: Path, seen: set[Path]) -> Inputs:
    path = path.resolve()
    if path in seen:
        return Inputs()
    seen.add(path)
    found = Inputs(files=[str(path)])
    for number, line in logical_lines(path.read_text(encoding="utf-8")):
        where = f"{path.name}:{number}"
        option, _, value = (
            line.partition(" ") if not line.startswith("--") else line.replace("=", " ", 1).partition(" ")
        )
        if option in INCLUDES:
            found.add(read_one(path.parent / value.strip(), seen))
            continue
        if option in EDITABLE:
            found.not_audited.append(f"{where}: {line} (editable)")
            continue
        if line.startswith("-"):
            continue  # --index-url, --find-links, --pre, --require-hashes ...: options, not requirements
        requirement_line(found, where, re.split(r"\s+--?[A-Za-z]", line, maxsplit=1)[0].strip())
    return found


def requirement_line(found: Inputs, where: str, text: str) -> None:
    if text.startswith((".", "/", "~")) or re.match(r"^[a-z+]+://", text):
        found.not_audited.append(f"{where}: {text} (a local path or URL)")
        return
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        if legacy_pin(text):  # name==<not PEP 440>: a pin relcheck cannot compare
            found.not_audited.append(f"{where}: {text} (not pinned to one PEP 440 version)")
        else:
            found.problems.append(f"{where}: {text!r} does not parse: {str(exc).splitlines()[0]}")
        return
    if requirement.url:
        found.not_audited.append(f"{where}: {text} (a URL or VCS reference)")
        return
    specifiers = list(requirement.specifier)
    version = exact_version(specifiers[0].version) if len(specifiers) == 1 and specifiers[0].operator == "==" else None
    if version is None:
        found.not_audited.append(f"{where}: {text} (not pinned to one PEP 440 version)")
        return
    found.pins.append(Pin(canonicalize_name(requirement.name), version, where))


def legacy_pin(text: str) -> bool:
    name, operator, version = text.partition("==")
    try:
        Requirement(name.strip())
    except InvalidRequirement:
        return False
    return bool(operator and version.strip()) and " " not in version.strip()


# --- lockfiles --------------------------------------------------------------------------------------------------
def lockfile(path: Path) -> Inputs:
    found = Inputs(files=[str(path)])
    if path.name == "Pipfile.lock":
        data = json.loads(path.read_text(encoding="utf-8"))
        for group in ("default", "develop"):
            for name, entry in (data.get(group) or {}).items():
                pinned = str(entry.get("version", "")).removeprefix("==") if isinstance(entry, dict) else ""
                direct = next((k for k in ("git", "path", "file", "editable") if k in entry), "") if entry else ""
                locked(found, f"{path.name} [{group}]", name, pinned, direct)
        return found
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    if path.name.startswith("pylock"):
        from packaging.pylock import Pylock, PylockValidationError

        try:
            lock = Pylock.from_dict(data)
        except PylockValidationError as exc:
            raise ValueError(f"not a valid pylock file: {exc}") from None
        for package in lock.packages:
            direct = (
                "vcs" if package.vcs else "directory" if package.directory else "archive" if package.archive else ""
            )
            locked(found, path.name, package.name, str(package.version) if package.version else "", direct)
        return found
    for package in data.get("package", []):
        source = package.get("source", {})
        if path.name == "poetry.lock":
            kind = source.get("type", "")
            direct = kind if kind in ("git", "url", "directory", "file") else ""
        elif path.name == "uv.lock":
            direct = next((k for k in ("git", "url", "path", "directory", "editable", "virtual") if k in source), "")
        else:  # pdm.lock
            direct = next((k for k in ("git", "url", "path", "editable") if k in package), "")
        locked(found, path.name, package.get("name", ""), str(package.get("version", "")), direct)
    return found


def locked(found: Inputs, where: str, name: str, version: str, direct: str) -> None:
    if not name:
        found.problems.append(f"{where}: a package without a name")
    elif direct:
        found.not_audited.append(f"{where}: {name} (from {direct}, not an index)")
    elif exact_version(version) is None:
        found.not_audited.append(f"{where}: {name} {version or '(no version)'} (not one PEP 440 version)")
    else:
        found.pins.append(Pin(canonicalize_name(name), version, where))
