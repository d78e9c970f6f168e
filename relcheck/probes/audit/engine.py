"""The audit: pins from the inputs, matched against every offline source and pip-audit, findings merged by id and
aliases. Given a resolver (pip's, as *Verify dependencies* runs it), the distributions the pins pull in and pin
nowhere (transitive) are audited too. Its verdict is never "clean" unless a source with data answered, every pin
was audited, the transitive set was resolved, no source is broken, stale or of unknown age, and nothing failed to
parse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from relcheck.probes.audit import inputs as inputs_module
from relcheck.probes.audit import matching, pipaudit
from relcheck.probes.audit import sources as sources_module
from relcheck.probes.audit.inputs import Pin
from relcheck.probes.audit.pipaudit import PipAudit
from relcheck.probes.audit.sources import Source

if TYPE_CHECKING:
    from relcheck.probes.dependencies import Resolution

TRANSITIVE = "transitive (resolved by pip)"  # a Pin's `where` when no requirement names it


@dataclass
class Finding:
    pin: Pin
    id: str
    aliases: list[str]
    fixed: list[str]
    summary: str
    source: str  # the record's file, or pip-audit
    note: str = ""  # e.g. matched conservatively on an unparseable bound

    @property
    def ids(self) -> set[str]:
        return {self.id, *self.aliases}

    @property
    def identity(self) -> tuple[str, str]:
        """The same finding in another release: the distribution and the advisory, whatever version is pinned."""
        return self.pin.name, self.id

    @property
    def transitive(self) -> bool:
        return self.pin.where == TRANSITIVE

    @property
    def named(self) -> str:
        """Its id, and the distribution when no requirement pins it (the fix is then a new pin)."""
        return f"{self.id} in transitive {self.pin.name}=={self.pin.version}" if self.transitive else self.id

    @property
    def label(self) -> str:
        return f"{self.pin.name}=={self.pin.version} {self.id}" + (" (transitive)" if self.transitive else "")


@dataclass
class Audit:
    pins: list[Pin]
    not_audited: list[str]
    sources: list[Source]
    findings: list[Finding]
    pip_audit: PipAudit
    problems: list[str] = field(default_factory=list)  # the target's pins do not parse: the audit fails
    gaps: list[str] = field(default_factory=list)  # what leaves it incomplete (a mirror missing, broken or stale,
    #                                                pip-audit required but not run): not verified
    warnings: list[str] = field(default_factory=list)
    transitive: list[Pin] = field(default_factory=list)  # resolved by pip, pinned nowhere: audited too
    resolution: str = ""  # how the transitive set was found, or why it could not be
    unresolved: bool = False  # the transitive set is unknown: its part of the audit is a gap

    @property
    def sources_used(self) -> list[str]:
        used = [f"{s.kind} {s.path} ({len(s.records)} PyPI advisories)" for s in self.sources if s.records]
        return used + (["pip-audit (online)"] if self.pip_audit.ran else [])

    @property
    def complete(self) -> bool:
        return not (self.problems or self.gaps or self.not_audited)


def audit(
    files: list[Path],
    advisories: list[Path],
    max_age_days: float = 7,
    pip_audit_mode: str = "off",
    timeout: float = 30,
    product: str = "",
    cache: Path | None = None,
    now: datetime | None = None,
    resolve: Callable[[inputs_module.Inputs], Resolution] | None = None,
) -> Audit:
    """`resolve`: the pins' full resolution (pip's dry run); without one only the pinned distributions are audited."""
    read = inputs_module.read(files)
    loaded = [sources_module.load(path, cache or sources_module.cache_dir()) for path in advisories]
    result = Audit(read.pins, list(read.not_audited), loaded, [], PipAudit(False, ""), list(read.problems))
    usable = judge_sources(result, max_age_days, product, now)
    if resolve is not None and (usable or pip_audit_mode != "off"):
        add_transitive(result, read, resolve)
    elif resolve is not None:  # pip's resolution takes a while: nothing could judge what it finds
        result.resolution = "not resolved: no advisory source counts and pip-audit is off, the audit is not verified"
    online = result.pip_audit = (
        pipaudit.run(read.requirement_files, timeout, [f"{p.name}=={p.version}" for p in result.transitive])
        if pip_audit_mode != "off"
        else PipAudit(False, "off (security.dependencies.pip_audit)")
    )
    index = sources_module.by_package(usable)
    for pin in read.pins + result.transitive:
        for record, affected in index.get(pin.name, []):
            match = matching.affects(affected, pin.version)
            if match.affected:
                result.findings.append(
                    Finding(pin, record.id, record.aliases, fixed_in(affected), record.summary, record.file, match.note)
                )
    add_pip_audit(result, online, covered=bool(index) or any(s.records for s in usable), mode=pip_audit_mode)
    result.findings = merged(result.findings)
    if not read.pins and not read.problems:
        result.gaps.append("no pinned requirement to audit")
    if not result.sources_used:
        result.gaps.append("no advisory source answered with PyPI data")
    return result


def add_transitive(result: Audit, read: inputs_module.Inputs, resolve: Callable) -> None:
    """The distributions pip installs for the requirements files that no input pins (a lockfile lists its own)."""
    if not read.requirement_files or read.problems:
        result.resolution = "nothing to resolve (lockfiles only)" if not read.problems else ""
        return
    resolution = resolve(read)
    result.resolution = resolution.detail
    if not resolution.ok:
        result.unresolved = True
        result.gaps.append(f"could not resolve the transitive distributions: {resolution.detail}")
        return
    pinned = {p.name for p in read.pins}
    result.transitive = [Pin(n, v, TRANSITIVE) for n, v in sorted(resolution.resolved.items()) if n not in pinned]


def judge_sources(result: Audit, max_age_days: float, product: str, now: datetime | None) -> list[Source]:
    """The sources whose data counts: not broken, fresh enough; a sample only for its product."""
    usable = []
    for source in result.sources:
        if source.problems:  # a mirror missing or broken: its data is no evidence either way
            fix = "security.dependencies.advisories" if source.kind == "missing" else "repair or re-fetch the mirror"
            result.gaps += [
                f"{p if p.startswith(source.path) else f'{source.path}: {p}'} ({fix})" for p in source.problems
            ]
            continue
        if not source.records:
            result.gaps.append(f"{source.path}: no PyPI advisories (no data)")
            continue
        if source.sample_for:
            if source.sample_for != product:
                result.gaps.append(f"{source.path} is a sample for {source.sample_for}, not an advisory mirror")
                continue
            result.warnings.append(f"{source.path} is a {len(source.records)}-record sample, not a full mirror")
        else:
            age = source.age_days(now)
            if age is None:
                result.gaps.append(f"{source.path}: age unknown (no snapshot.json, git history or modified dates)")
                continue
            if age > max_age_days:
                result.gaps.append(
                    f"{source.path} is stale: {age:.0f} days old ({source.age_from}), more than {max_age_days:g} "
                    "(update the mirror, or raise security.dependencies.max_age_days)"
                )
                continue
        usable.append(source)
    return usable


def add_pip_audit(result: Audit, online: PipAudit, covered: bool, mode: str) -> None:
    for name, version, vuln_id, aliases, fixed in online.vulnerabilities:
        pin = next((p for p in result.pins + result.transitive if p.name == name), Pin(name, version, "pip-audit"))
        result.findings.append(Finding(pin, vuln_id, aliases, fixed, "reported by pip-audit", "pip-audit"))
    if mode == "required" and not online.ran:
        result.gaps.append(
            f"pip-audit is required but did not audit: {online.detail} (security.dependencies.pip_audit)"
        )
    if online.skipped and not (mode == "auto" and covered):  # an offline mirror covered what pip-audit skipped
        result.not_audited += [f"pip-audit skipped {line}" for line in online.skipped]


def fixed_in(affected: dict) -> list[str]:
    return [
        str(event["fixed"])
        for r in affected.get("ranges", []) or []
        if r.get("type") == "ECOSYSTEM"
        for event in r.get("events", []) or []
        if "fixed" in event
    ]


def merged(findings: list[Finding]) -> list[Finding]:
    """One finding per pin and vulnerability: records that share an id or alias (PYSEC and GHSA) are merged."""
    kept: list[Finding] = []
    for finding in findings:
        same = next((k for k in kept if k.pin.name == finding.pin.name and k.ids & finding.ids), None)
        if same is None:
            kept.append(finding)
            continue
        same.aliases = sorted((same.ids | finding.ids) - {same.id})
        same.fixed = sorted(set(same.fixed) | set(finding.fixed))
        if same.source == "pip-audit":
            same.summary, same.source = finding.summary, finding.source
    return kept
