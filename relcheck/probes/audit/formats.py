"""`relcheck audit` output: a text table or JSON, and the exit status (0 clean, 1 vulnerable, 2 could not audit)."""

from __future__ import annotations

import json
from dataclasses import asdict

from relcheck.probes.audit.engine import Audit

CLEAN, VULNERABLE, NOT_AUDITED = 0, 1, 2


def exit_status(found: Audit) -> int:
    if found.findings:
        return VULNERABLE
    return CLEAN if found.complete else NOT_AUDITED


def as_json(found: Audit) -> str:
    return json.dumps(
        {
            "findings": [
                {
                    "package": f.pin.name,
                    "version": f.pin.version,
                    "where": f.pin.where,
                    "id": f.id,
                    "aliases": f.aliases,
                    "fixed_in": f.fixed,
                    "summary": f.summary,
                    "source": f.source,
                    "note": f.note,
                }
                for f in found.findings
            ],
            "audited": [asdict(p) for p in found.pins + found.transitive],
            "resolution": found.resolution,
            "not_audited": found.not_audited,
            "sources": [source_line(s) for s in found.sources] + [f"pip-audit: {found.pip_audit.detail}"],
            "problems": found.problems,
            "gaps": found.gaps,
            "warnings": found.warnings,
            "exit": exit_status(found),
        },
        indent=2,
    )


def source_line(source) -> str:
    age = source.age_days()
    when = (
        "a sample"
        if source.sample_for
        else f"{age:.1f} days old ({source.age_from})"
        if age is not None
        else "age unknown"
    )
    return f"{source.kind} {source.path}: {len(source.records)} PyPI advisories of {source.read} read, {when}"


def as_text(found: Audit) -> str:
    lines = [
        f"{len(found.pins)} pinned requirement(s) audited",
        f"{len(found.transitive)} transitive distribution(s) audited ({found.resolution or 'not resolved'})",
    ]
    if found.findings:
        width = max(len(f"{f.pin.name}=={f.pin.version}") for f in found.findings)
        lines += ["", f"{'package':{width}}  id  (aliases)  fixed in"]
        lines += [
            f"{f.pin.name + '==' + f.pin.version:{width}}  {f.id}  ({', '.join(f.aliases) or '-'})  "
            f"{', '.join(f.fixed) or 'no fix'}" + (f"  [{f.note}]" if f.note else "")
            for f in found.findings
        ]
    sections = [
        ("not audited", found.not_audited),
        ("sources", [source_line(s) for s in found.sources] + [f"pip-audit: {found.pip_audit.detail}"]),
        ("problems", found.problems),
        ("incomplete", found.gaps),
        ("warnings", found.warnings),
    ]
    for title, rows in sections:
        if rows:
            lines += ["", f"{title}:", *(f"  {row}" for row in rows)]
    verdict = {
        CLEAN: "no known vulnerabilities",
        VULNERABLE: f"{len(found.findings)} vulnerable",
        NOT_AUDITED: "could not audit everything",
    }
    lines += ["", verdict[exit_status(found)]]
    return "\n".join(lines)
