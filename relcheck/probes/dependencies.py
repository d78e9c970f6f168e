"""Are the target's requirements deployable: pinned to one version each, and resolvable together — pip's own
resolver over every pin (`pip install --dry-run --report` in isolation: nothing installed), with the target's
interpreter when one is configured, so markers are evaluated for the Python the service runs on."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from packaging.utils import canonicalize_name

from relcheck.probes.audit.inputs import Pin
from relcheck.target import commands

CACHE_ENV = "RELCHECK_RESOLUTION_CACHE"
LOCAL_REFERENCE = re.compile(rb"(^|\s)(-e|--editable)\s|file:|(^|\s)\.{1,2}/", re.MULTILINE)
# pip's verbose log (--log) of an index page it could not read; a project an index does not have is a 404 there
UNREAD = re.compile(r"Could not fetch URL (\S+): (.*) - skipping")
NOT_THERE = ("404 ", "410 ")


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
    """pip's answer, or — with RELCHECK_RESOLUTION_CACHE set to a directory — its earlier successful answer for the
    same requirements files, interpreter and PIP_* variables, said so in the detail (the suite's own tests use it:
    one resolution of the reference's pins serves its many phase runs)."""
    cached = cache_file(requirements, pins, python)
    if cached and cached.is_file():
        answer = json.loads(cached.read_text())
        return Resolution(**{**answer, "detail": answer["detail"] + f" (the answer kept in {CACHE_ENV})"})
    resolution = resolve_with_pip(requirements, pins, python, timeout)
    if cached and resolution.ok:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(json.dumps(asdict(resolution)))
        partial.replace(cached)
    return resolution


def cache_file(requirements: list[Path], pins: list[Pin], python: str) -> Path | None:
    directory = os.environ.get(CACHE_ENV)
    if not directory:
        return None
    digest = hashlib.sha256(python.encode())
    for key, value in sorted(os.environ.items()):
        if key.startswith("PIP_"):
            digest.update(f"{key}={value}\n".encode())
    for path in requirements:
        text = path.read_bytes()
        where = str(path).encode() if LOCAL_REFERENCE.search(text) else b""  # "-e .", "./pkg": its place counts
        digest.update(where + b"\0" + text + b"\0")
    digest.update(repr(sorted(map(str, pins))).encode())
    return Path(directory) / f"{digest.hexdigest()}.json"


def resolve_with_pip(requirements: list[Path], pins: list[Pin], python: str, timeout: float) -> Resolution:
    with tempfile.TemporaryDirectory() as workdir:
        report, log = Path(workdir) / "report.json", Path(workdir) / "pip.log"
        command = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed"]  # not --quiet: the conflict
        command += ["--disable-pip-version-check", "--report", str(report), "--log", str(log)]
        for path in requirements:
            command += ["-r", str(path)]
        result = commands.run(command, timeout=timeout)
        if result.problem:
            return Resolution(None, f"pip resolving with {python}: {result.problem}")
        if result.returncode != 0 or not report.is_file():
            unread = unreadable_indexes(log.read_text(errors="replace") if log.is_file() else "")
            return failed(result.stdout + "\n" + result.stderr, result.returncode or 0, unread)
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


def unreadable_indexes(log: str) -> dict[str, str]:
    """The indexes pip could not read (refused, timed out, no DNS, TLS, a server error), from its --log, each with
    why, credentials left out; a project page an index answers 404 for is an answer (it has no such project)."""
    found: dict[str, str] = {}
    for url, reason in UNREAD.findall(log):
        if not reason.startswith(NOT_THERE):
            parts = urlsplit(url)  # a project page: <index>/<project>/
            index = urlunsplit(
                (parts.scheme, parts.netloc.rpartition("@")[2], parts.path.rstrip("/").rsplit("/", 1)[0], "", "")
            )
            errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", reason)
            found.setdefault(index, (errno[1] if errno else reason)[:120])
    return found


def failed(output: str, code: int, unread: dict[str, str]) -> Resolution:
    """pip's refusal: a conflict (the requirements it names), a pin that does not exist — unless an index could not
    be read (unread: index -> why), which may hold what pip missed."""
    if unread:
        named = "; ".join(f"{index}: {why}" for index, why in unread.items())
        return Resolution(None, f"the package index is unreachable: the pins could not be resolved ({named})")
    cause = output.partition("The conflict is caused by:")[2].split("\n\n")[0]
    conflict = [line.strip() for line in cause.splitlines() if line.strip()]
    if conflict:
        return Resolution(False, "the pins conflict: " + "; ".join(conflict[:4]))
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    return Resolution(False, f"pip install --dry-run failed: {errors[0] if errors else f'exit {code}'}")
