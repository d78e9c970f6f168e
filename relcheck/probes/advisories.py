"""Dependency vulnerability audit of pinned requirements against OSV advisories.

Offline sources: directories of OSV records, as OSV JSON (osv.dev exports) or as the PyPA advisory database's
YAML (vulns/<package>/PYSEC-*.yaml). Online: pip-audit, when installed and the network answers. A requirement that
is not pinned to one version cannot be audited, and is reported as such (never as clean).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Requirement:
    name: str
    version: str
    source: str


@dataclass
class Advisory:
    id: str
    aliases: list[str]
    summary: str
    package: str
    fixed: list[str]
    source: str
    modified: str = ""


@dataclass
class Vulnerability:
    requirement: Requirement
    advisory: Advisory

    @property
    def ids(self) -> set[str]:
        return {self.advisory.id, *self.advisory.aliases}


@dataclass
class AdvisoryDB:
    records: dict[str, list[dict]] = field(default_factory=dict)  # normalized package -> OSV "affected" + record
    count: int = 0
    newest: str = ""
    snapshot: str = ""  # when the mirror was taken (snapshot.json "taken"), if it says
    sources: list[str] = field(default_factory=list)


def read_requirements(path: Path, seen: set | None = None) -> tuple[list[Requirement], list[str]]:
    """Pinned requirements (following -r includes) and the lines that are not pinned to one version."""
    seen = seen if seen is not None else set()
    if path in seen:
        return [], []
    seen.add(path)
    pinned, unpinned = [], []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            more, loose = read_requirements(path.parent / line.split(None, 1)[1], seen)
            pinned += more
            unpinned += loose
            continue
        match = _PIN.match(line)
        if match:
            pinned.append(Requirement(normalize(match.group(1)), match.group(3), path.name))
        else:
            unpinned.append(f"{path.name}: {line}")
    return pinned, unpinned


def load(directories: list[Path]) -> AdvisoryDB:
    db = AdvisoryDB()
    for directory in directories:
        db.sources.append(str(directory))
        for path in sorted(directory.rglob("*")):
            if path.name == "snapshot.json":
                db.snapshot = max(db.snapshot, str(json.loads(path.read_text(encoding="utf-8")).get("taken", "")))
                continue
            if path.suffix == ".json":
                record = json.loads(path.read_text(encoding="utf-8"))
            elif path.suffix in (".yaml", ".yml"):
                record = yaml.safe_load(path.read_text(encoding="utf-8"))
            else:
                continue
            if not isinstance(record, dict) or "id" not in record or record.get("withdrawn"):
                continue
            db.count += 1
            db.newest = max(db.newest, str(record.get("modified", "")))
            for affected in record.get("affected", []):
                package = affected.get("package", {})
                if package.get("ecosystem") == "PyPI":
                    db.records.setdefault(normalize(package.get("name", "")), []).append(
                        {"record": record, "affected": affected, "path": path.name}
                    )
    return db


def _in_ranges(version: Version, ranges: list[dict]) -> bool:
    for r in ranges:
        if r.get("type") != "ECOSYSTEM":
            continue
        affected = False
        for event in sorted(r.get("events", []), key=lambda e: _event_version(e)):
            kind, value = next(iter(event.items()))
            bound = _parse(value)
            if bound is None and kind != "introduced":
                continue
            if kind == "introduced" and (value == "0" or (bound is not None and version >= bound)):
                affected = True
            elif kind == "fixed" and version >= bound:
                affected = False
            elif kind == "last_affected" and version > bound:
                affected = False
        if affected:
            return True
    return False


def _parse(value: str) -> Version | None:
    try:
        return Version(value)
    except InvalidVersion:
        return None


def _event_version(event: dict) -> Version:
    value = next(iter(event.values()))
    return Version("0") if value == "0" else (_parse(value) or Version("0"))


def affects(affected: dict, version: str) -> bool:
    """OSV semantics: listed in `versions`, or inside an ECOSYSTEM range."""
    if version in affected.get("versions", []):
        return True
    parsed = _parse(version)
    return parsed is not None and _in_ranges(parsed, affected.get("ranges", []))


def audit(requirements: list[Requirement], db: AdvisoryDB) -> list[Vulnerability]:
    found = []
    for requirement in requirements:
        for entry in db.records.get(requirement.name, []):
            if affects(entry["affected"], requirement.version):
                record = entry["record"]
                fixed = [
                    e["fixed"]
                    for r in entry["affected"].get("ranges", [])
                    if r.get("type") == "ECOSYSTEM"
                    for e in r.get("events", [])
                    if "fixed" in e
                ]
                summary = record.get("summary") or record.get("details", "").split(". ")[0]
                found.append(
                    Vulnerability(
                        requirement,
                        Advisory(
                            record["id"],
                            list(record.get("aliases", [])),
                            summary[:200],
                            requirement.name,
                            fixed,
                            entry["path"],
                            str(record.get("modified", "")),
                        ),
                    )
                )
    return found


@dataclass
class PipAudit:
    ran: bool
    detail: str
    vulnerabilities: list[tuple[str, str, str, list[str]]] = field(default_factory=list)  # name, version, id, aliases
    skipped: list[str] = field(default_factory=list)


def pip_audit(requirement_files: list[Path], timeout: float) -> PipAudit:
    """Online audit with pip-audit (PyPI/OSV services); unavailable offline, which is reported, not hidden."""
    executable = shutil.which("pip-audit")
    if not executable:
        return PipAudit(False, "pip-audit is not installed")
    command = [
        executable,
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--no-deps",
        "--disable-pip",
        "--timeout",
        str(int(timeout)),
    ]
    for path in requirement_files:
        command += ["-r", str(path)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout * 3)
    except subprocess.TimeoutExpired:
        return PipAudit(False, f"pip-audit did not finish within {timeout * 3:g}s (network?)")
    try:
        data = json.loads(result.stdout)
    except ValueError:
        tail = result.stderr.strip().splitlines()
        return PipAudit(False, f"pip-audit failed: {tail[-1] if tail else 'no output'}")
    audit_result = PipAudit(True, "ran")
    for dep in data.get("dependencies", []):
        if dep.get("skip_reason"):
            audit_result.skipped.append(f"{dep['name']}: {dep['skip_reason']}")
        for vuln in dep.get("vulns", []):
            audit_result.vulnerabilities.append(
                (normalize(dep["name"]), dep.get("version", ""), vuln["id"], vuln.get("aliases", []))
            )
    return audit_result


@dataclass
class DependencyAudit:
    requirements: list[Requirement]
    unaudited: list[str]  # unpinned lines, and what pip-audit skipped
    offline: AdvisoryDB | None
    vulnerabilities: list[Vulnerability]
    pip_audit: PipAudit
    problems: list[str] = field(default_factory=list)

    @property
    def gaps(self) -> list[str]:
        """Why the audit is not complete ([] when a source answered and every requirement was audited)."""
        return (
            self.problems
            + ([] if self.sources_used else ["no advisory source answered"])
            + ([] if self.requirements else ["no pinned requirements found"])
            + [f"not audited: {line}" for line in self.unaudited[:3]]
            + ([f"and {len(self.unaudited) - 3} more not audited"] if len(self.unaudited) > 3 else [])
        )

    @property
    def sources_used(self) -> list[str]:
        used = [f"offline OSV mirror ({self.offline.count} advisories)"] if self.offline and self.offline.count else []
        return used + (["pip-audit (online)"] if self.pip_audit.ran else [])


def run_audit(files: list[Path], directories: list[Path], pip_audit_mode: str, timeout: float) -> DependencyAudit:
    problems = [f"{f.name} not found" for f in files if not f.is_file()]
    pinned, unpinned = [], []
    for path in (f for f in files if f.is_file()):
        more, loose = read_requirements(path)
        pinned += more
        unpinned += loose
    problems += [f"advisory directory {d} not found" for d in directories if not d.is_dir()]
    offline = load([d for d in directories if d.is_dir()]) if directories else None
    found = audit(pinned, offline) if offline else []
    online = (
        pip_audit(files, timeout)
        if pip_audit_mode != "off"
        else PipAudit(False, "disabled (security.dependencies.pip_audit = off)")
    )
    known = {(v.requirement.name, v.advisory.id) for v in found}
    for name, version, vuln_id, aliases in online.vulnerabilities:
        if (name, vuln_id) not in known:
            requirement = next((r for r in pinned if r.name == name), Requirement(name, version, "pip-audit"))
            found.append(
                Vulnerability(requirement, Advisory(vuln_id, aliases, "reported by pip-audit", name, [], "pip-audit"))
            )
    return DependencyAudit(pinned, unpinned + online.skipped, offline, found, online, problems)
