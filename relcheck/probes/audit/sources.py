"""Advisory sources read offline, several at once: a PyPA advisory-database checkout (OSV as YAML under vulns/), a
directory of OSV JSON records, and OSV's ecosystem archive (PyPI/all.zip) read in place. Loading is strict: a record
that is empty, does not parse, is not a mapping or lacks id/affected is a problem naming its file. A source's age
comes from its snapshot.json ("taken"), else its git clone's last commit, else its newest `modified`; a snapshot.json
with "sample": true marks a hand-made sample (no age; only for the product it names). Parsed sources are cached,
keyed by a digest of the files' names, sizes and modification times."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml
from packaging.utils import canonicalize_name

from relcheck.core.files import write_atomic
from relcheck.target import commands

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster
METADATA = "snapshot.json"
CACHE_VERSION = "1"


@dataclass
class Record:
    id: str
    aliases: list[str]
    summary: str
    modified: str
    affected: list[dict]  # the PyPI entries of the record's "affected"
    file: str


@dataclass
class Source:
    path: str
    kind: str  # "PyPA checkout", "OSV directory", "OSV archive"
    records: list[Record] = field(default_factory=list)  # PyPI records, withdrawn ones left out
    read: int = 0  # records read (every ecosystem)
    problems: list[str] = field(default_factory=list)
    taken: str = ""  # ISO time the data is from
    age_from: str = ""  # where `taken` came from
    sample_for: str = ""  # a hand-made sample, valid only for this product

    def age_days(self, now: datetime | None = None) -> float | None:
        if not self.taken:
            return None
        taken = datetime.fromisoformat(self.taken.replace("Z", "+00:00"))
        taken = taken if taken.tzinfo else taken.replace(tzinfo=timezone.utc)
        return ((now or datetime.now(timezone.utc)) - taken).total_seconds() / 86400


def load(path: Path, cache_dir: Path | None = None) -> Source:
    """One source, from the cache when its files have not changed."""
    if not path.exists():
        return Source(str(path), "missing", problems=[f"{path}: not found"])
    key = digest(path)
    cached = cache_dir / f"{key}.pickle" if cache_dir else None
    if cached and cached.is_file():
        try:
            return pickle.loads(cached.read_bytes())
        except (pickle.PickleError, EOFError, AttributeError):
            pass
    source = read_zip(path) if path.is_file() else read_directory(path)
    date_it(source, path)
    if cached:
        write_atomic(cached, pickle.dumps(source))
    return source


def digest(path: Path) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}\0{path.resolve()}".encode())
    entries = [path] if path.is_file() else sorted(p for p in path.rglob("*") if ".git" not in p.parts)
    for entry in entries:
        stat = entry.stat()
        h.update(f"\0{entry.relative_to(path) if entry != path else ''}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    head = path / ".git" / "HEAD"
    if head.is_file():
        h.update(head.read_bytes())
    return h.hexdigest()


def read_directory(path: Path) -> Source:
    pypa = (path / "vulns").is_dir()
    source = Source(str(path), "PyPA checkout" if pypa else "OSV directory")
    root = path / "vulns" if pypa else path
    for file in sorted(root.rglob("*")):
        if ".git" in file.parts or not file.is_file() or file.name == METADATA:
            continue
        if file.suffix in (".yaml", ".yml"):
            add(source, str(file.relative_to(path)), lambda f=file: yaml.load(f.read_bytes(), Loader=LOADER))
        elif file.suffix == ".json":
            add(source, str(file.relative_to(path)), lambda f=file: json.loads(f.read_bytes()))
    return source


def read_zip(path: Path) -> Source:
    source = Source(str(path), "OSV archive")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        source.problems.append(f"{path.name}: not a zip archive: {exc}")
        return source
    with archive:
        for member in archive.infolist():
            if not member.is_dir() and member.filename.endswith(".json"):
                add(source, f"{path.name}:{member.filename}", lambda m=member: json.loads(archive.read(m)))
    return source


def add(source: Source, name: str, parse) -> None:
    """One record, strictly: a broken one is a problem naming its file, never skipped in silence."""
    try:
        raw = parse()
    except (yaml.YAMLError, ValueError, OSError) as exc:
        source.problems.append(f"{name}: does not parse: {str(exc).splitlines()[0]}")
        return
    if not raw:
        source.problems.append(f"{name}: empty")
        return
    if not isinstance(raw, dict):
        source.problems.append(f"{name}: not a mapping")
        return
    missing = [key for key in ("id", "affected") if key not in raw]
    if missing:
        source.problems.append(f"{name}: lacks {' and '.join(missing)}")
        return
    source.read += 1
    if raw.get("withdrawn"):
        return
    pypi = [
        a for a in raw["affected"] or [] if isinstance(a, dict) and (a.get("package") or {}).get("ecosystem") == "PyPI"
    ]
    if pypi:
        summary = str(raw.get("summary") or str(raw.get("details", "")).split(". ")[0])[:200]
        source.records.append(
            Record(
                str(raw["id"]),
                [str(a) for a in raw.get("aliases") or []],
                summary,
                str(raw.get("modified", "")),
                pypi,
                name,
            )
        )


def date_it(source: Source, path: Path) -> None:
    """When the data is from: snapshot.json, else the clone's last commit, else the newest `modified`."""
    metadata = path / METADATA if path.is_dir() else None
    if metadata and metadata.is_file():
        meta = json.loads(metadata.read_text(encoding="utf-8"))
        if meta.get("sample"):
            source.sample_for, source.age_from = str(meta.get("for", "")), "a sample (no age)"
            return
        if meta.get("taken"):
            source.taken, source.age_from = str(meta["taken"]), METADATA
            return
    if (path / ".git").exists():  # the clone's own history, not a repository it happens to sit in
        commit = commands.run(["git", "-C", str(path), "log", "-1", "--format=%cI"], timeout=30)
        if commit.ok and commit.stdout.strip():
            source.taken, source.age_from = commit.stdout.strip(), "last commit of the clone"
            return
    newest = max((r.modified for r in source.records if r.modified), default="")
    if newest:
        source.taken, source.age_from = newest, "newest record's modified"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "relcheck" / "advisories"


def by_package(sources: list[Source]) -> dict[str, list[tuple[Record, dict]]]:
    """Each package's (record, affected entry) pairs across sources; a record id seen twice is kept once."""
    seen: set[str] = set()
    index: dict[str, list[tuple[Record, dict]]] = {}
    for source in sources:
        for record in source.records:
            if record.id in seen:
                continue
            seen.add(record.id)
            for affected in record.affected:
                name = canonicalize_name(str(affected.get("package", {}).get("name", "")))
                index.setdefault(name, []).append((record, affected))
    return index
