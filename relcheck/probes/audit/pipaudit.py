"""pip-audit online (PyPI's JSON API or OSV), when installed and the index answers. What it skips ("not found on
PyPI", "could not be audited") is not audited; when it audited nothing it is not a source."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from relcheck.target import commands


@dataclass
class PipAudit:
    ran: bool  # audited at least one dependency
    detail: str
    vulnerabilities: list[tuple[str, str, str, list[str], list[str]]] = field(default_factory=list)
    # (name, version, id, aliases, fixed versions)
    skipped: list[str] = field(default_factory=list)  # "name: reason"
    audited: set[str] = field(default_factory=set)


def run(requirement_files: list[Path], timeout: float, also: list[str] | None = None) -> PipAudit:
    """`also`: more exact pins (name==version) to audit, e.g. the transitive distributions pip resolved."""
    executable = shutil.which("pip-audit")
    if not executable:
        return PipAudit(False, "pip-audit is not installed")
    command = [executable, "--format", "json", "--progress-spinner", "off", "--no-deps", "--disable-pip"]
    command += ["--timeout", str(int(timeout))]
    for path in requirement_files:
        command += ["-r", str(path)]
    with tempfile.TemporaryDirectory() as workdir:
        if also:
            extra = Path(workdir) / "transitive.txt"
            extra.write_text("".join(f"{line}\n" for line in also))
            command += ["-r", str(extra)]
        result = commands.run(command, timeout=timeout * 3)
    if result.problem:
        return PipAudit(False, f"pip-audit: {result.problem} (network?)")
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return PipAudit(False, f"pip-audit failed: {result.last_line}")
    found = PipAudit(False, "")
    for dep in data.get("dependencies", []):
        name = canonicalize_name(dep["name"])
        if dep.get("skip_reason"):
            found.skipped.append(f"{name}: {dep['skip_reason']}")
            continue
        found.audited.add(name)
        for vuln in dep.get("vulns", []):
            found.vulnerabilities.append(
                (name, dep.get("version", ""), vuln["id"], vuln.get("aliases", []), vuln.get("fix_versions", []))
            )
    found.ran = bool(found.audited)
    found.detail = (
        f"audited {len(found.audited)}, skipped {len(found.skipped)}"
        if found.ran
        else ("audited nothing: " + ("; ".join(found.skipped[:3]) or "no dependencies in its answer"))
    )
    return found
