"""Are the target's requirements deployable: pinned to one version each, and resolvable together — pip's own
resolver over every pin (`pip install --dry-run --report` in isolation: nothing installed), with the target's
interpreter when one is configured, so markers are evaluated for the Python the service runs on."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from relcheck.probes.audit.inputs import Pin
from relcheck.target import commands

UNREACHABLE = ("NewConnectionError", "Network is unreachable", "Temporary failure in name resolution", "ProxyError")


@dataclass
class Resolution:
    ok: bool | None  # None: could not check (index unreachable, pip missing, timed out)
    detail: str
    resolved: dict[str, str] = field(default_factory=dict)  # name -> version pip would install
    unpinned_dependencies: list[str] = field(default_factory=list)  # resolved, but pinned nowhere
    unchecked: list[str] = field(default_factory=list)  # pins absent from pip's answer

    @property
    def checked(self) -> int:
        return len(self.resolved)


def resolve(requirements: list[Path], pins: list[Pin], python: str, timeout: float = 300) -> Resolution:
    with tempfile.TemporaryDirectory() as workdir:
        report = Path(workdir) / "report.json"
        command = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed"]  # not --quiet: the conflict
        command += ["--disable-pip-version-check", "--report", str(report)]
        for path in requirements:
            command += ["-r", str(path)]
        result = commands.run(command, timeout=timeout)
        if result.problem:
            return Resolution(None, f"pip resolving with {python}: {result.problem}")
        if result.returncode != 0 or not report.is_file():
            return failed(result.stdout + "\n" + result.stderr, result.returncode or 0)
        installs = json.loads(report.read_text())["install"]
    resolved: dict[str, str] = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}
    pinned = {p.name for p in pins}
    return Resolution(
        True,
        f"pip resolved {len(resolved)} distributions for {python}",
        resolved,
        sorted(f"{name}=={version}" for name, version in resolved.items() if name not in pinned),
        sorted(f"{p.name}=={p.version}" for p in pins if p.name not in resolved),
    )


def failed(output: str, code: int) -> Resolution:
    """pip's refusal: a conflict (the requirements it names), a pin that does not exist — or an index it could not
    reach."""
    if any(marker in output for marker in UNREACHABLE):
        return Resolution(None, "the package index is unreachable: the pins could not be resolved")
    cause = output.partition("The conflict is caused by:")[2].split("\n\n")[0]
    conflict = [line.strip() for line in cause.splitlines() if line.strip()]
    if conflict:
        return Resolution(False, "the pins conflict: " + "; ".join(conflict[:4]))
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    return Resolution(False, f"pip install --dry-run failed: {errors[0] if errors else f'exit {code}'}")
