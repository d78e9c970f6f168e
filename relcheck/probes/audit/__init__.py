"""Dependency audit, cut like pip-audit: inputs (requirements files and lockfiles -> pins and what cannot be
audited), sources (advisory mirrors: PyPA checkout, OSV directory, OSV archive; pip-audit online), matching (OSV
ranges under PEP 440), the engine that joins them, and output formats for `relcheck audit`.

    found = engine.audit([Path("requirements.txt")], [Path("advisory-database")], max_age_days=7)
    found.findings, found.not_audited, found.problems, found.gaps
"""
