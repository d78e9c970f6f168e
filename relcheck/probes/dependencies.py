"""Are the target's requirements deployable: pinned, consistent with each other (pip check on the pinned set),
and installable from the package index."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as Spec

from relcheck.probes.advisories import Requirement, normalize


@dataclass
class Consistency:
    conflicts: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # pins whose metadata was read (installed here)
    unknown: list[str] = field(default_factory=list)  # pins not installed here: metadata unavailable


def consistency(pins: list[Requirement]) -> Consistency:
    """Each pinned distribution's own requirements (markers evaluated here, extras ignored) must accept the
    version pinned for them — `pip check` over the pinned set, from installed metadata."""
    pinned = {p.name: p.version for p in pins}
    result = Consistency()
    for pin in pins:
        try:
            dist = metadata.distribution(pin.name)
        except metadata.PackageNotFoundError:
            result.unknown.append(f"{pin.name}=={pin.version}")
            continue
        if normalize(dist.metadata["Name"]) != pin.name or dist.version != pin.version:
            result.unknown.append(f"{pin.name}=={pin.version} (installed {dist.version})")
            continue
        result.checked.append(f"{pin.name}=={pin.version}")
        for raw in dist.requires or []:
            try:
                need = Spec(raw)
            except InvalidRequirement:
                continue
            if need.marker and not need.marker.evaluate({"extra": ""}):
                continue
            version = pinned.get(normalize(need.name))
            if version is not None and not need.specifier.contains(version, prereleases=True):
                result.conflicts.append(f"{pin.name}=={pin.version} needs {need}, but {need.name}=={version} is pinned")
    return result


@dataclass
class Installability:
    ok: bool
    detail: str
    resolved: list[str] = field(default_factory=list)


def installable(requirements: Path, timeout: float = 120) -> Installability:
    """pip's own dry run against the configured index (pinned versions exist and have metadata)."""
    with tempfile.TemporaryDirectory() as workdir:
        report = Path(workdir) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--no-deps",
            "--disable-pip-version-check",
            "-r",
            str(requirements),
            "--report",
            str(report),
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Installability(False, f"pip did not answer within {timeout:g}s (index unreachable?)")
        if result.returncode != 0 or not report.is_file():
            lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
            return Installability(False, f"pip install --dry-run failed: {lines[-1] if lines else result.returncode}")
        resolved = [
            f"{i['metadata']['name']}=={i['metadata']['version']}" for i in json.loads(report.read_text())["install"]
        ]
        return Installability(True, f"pip resolved {len(resolved)} pinned distributions", resolved)
