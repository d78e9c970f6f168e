"""Pre-Release Verification / Security Checks. The live ones (access controls, data protection, audit logging)
also run in the post-deploy smoke, against the deployed service: the security and compliance triggers need them."""

import re
from datetime import date

import pytest

from relcheck.core.statuses import require
from relcheck.probes import change, conformance
from relcheck.probes.audit import formats
from relcheck.probes.change import record
from relcheck.probes.docs import completeness
from relcheck.probes.review import matching
from relcheck.signing.waivers import for_finding

pytestmark = pytest.mark.security


@pytest.mark.item("Security Checks", "Security scan completed")
def test_security_scan_and_dependency_audit(
    bandit_scan, bandit_before, dependency_audit, audit_before, relcheck_config, evidence
):
    cfg, audit, scan = relcheck_config.security, dependency_audit, bandit_scan
    judged = not scan.not_judged
    gating = [f for f in scan.findings if f.at_least(cfg.bandit.severity, cfg.bandit.confidence)]
    new = [f for f in gating if not f.in_baseline] if judged else []
    evidence.kv(
        "Code scan (bandit)",
        {"files": scan.files, "findings": len(scan.findings), "new at or above threshold": len(new)}
        if judged
        else {"not judged": scan.not_judged},
    )
    evidence.kv(
        "Dependency audit",
        {
            "inputs": ", ".join(cfg.dependencies.requirements),
            "pinned packages audited": len(audit.pins),
            "transitive distributions audited": len(audit.transitive),
            "transitive resolved by": audit.resolution or "not resolved",
            "pip-audit": audit.pip_audit.detail,
            "vulnerable": len(audit.findings),
        },
    )
    evidence.table("Advisory sources", ["source"], [(formats.source_line(s),) for s in audit.sources])
    evidence.table(
        "Audited distributions",
        ["distribution", "version", "from"],
        [(p.name, p.version, p.where) for p in audit.pins + audit.transitive],
    )
    evidence.table(
        "Vulnerable dependencies",
        ["package", "version", "from", "advisory", "aliases", "fixed in", "summary", "note"],
        [
            (f.pin.name, f.pin.version, f.pin.where, f.id, ", ".join(f.aliases), ", ".join(f.fixed), f.summary, f.note)
            for f in audit.findings
        ],
    )
    evidence.table("Not audited", ["requirement"], [(line,) for line in audit.not_audited])
    for warning in audit.warnings:
        evidence.warn(warning)
    assert not audit.problems, "; ".join(audit.problems[:3])
    assert not audit.not_audited, f"{len(audit.not_audited)} requirement(s) could not be audited: " + "; ".join(
        audit.not_audited[:3]
    )
    code = bandit_before.compare(new, gating) if judged else change.Change(missing=scan.not_judged)
    record(evidence, "Code and dependency findings", audit_before.release, code + audit_before.compare(audit.findings))
    assert not new, f"{len(new)} new code finding(s) at or above {cfg.bandit.severity}"
    assert not audit.findings, f"{len(audit.findings)} vulnerable dependenc(ies): " + ", ".join(
        f"{f.pin.name}=={f.pin.version} ({f.id}{', transitive' if f.transitive else ''})" for f in audit.findings[:5]
    )
    require(judged, f"the code scan is not verified: {scan.not_judged}")
    require(not audit.gaps, "the dependency audit is not complete: " + "; ".join(audit.gaps[:3]))


@pytest.mark.item("Security Checks", "Vulnerabilities addressed")
def test_vulnerabilities_addressed(
    bandit_scan, bandit_before, dependency_audit, audit_before, release_waivers, relcheck_config, evidence
):
    cfg, judged = relcheck_config.security.bandit, not bandit_scan.not_judged
    code = [f for f in bandit_scan.findings if f.at_least(cfg.severity, cfg.confidence)] if judged else []
    findings = [(f, f.id, f"{f.filename}:{f.line} {f.text}", {f.id}, f.severity) for f in code]
    findings += [
        (f, f.named, f"{f.pin.name}=={f.pin.version} ({f.pin.where}): {f.summary}", f.ids, "advisory")
        for f in dependency_audit.findings
    ]
    today = date.today()
    rows, open_findings, still_open, waived = [], [], [], []
    for finding, finding_id, what, ids, severity in findings:
        waiver = for_finding(release_waivers, ids)
        state = waiver.state(today) if waiver else "open"
        if waiver and state == "valid":
            waived.append(finding_id)
            rows.append(
                (
                    finding_id,
                    severity,
                    what,
                    f"WAIVED by {waiver.id} ({waiver.approver}, until {waiver.expires}): {waiver.reason}",
                )
            )
        else:
            open_findings.append(f"{finding_id} ({state if waiver else 'no waiver'})")
            still_open.append(finding)
            rows.append((finding_id, severity, what, f"OPEN: waiver {waiver.id} {state}" if waiver else "OPEN"))
    evidence.kv(
        "Findings",
        {
            "total": len(findings),
            "waived": len(waived),
            "open": len(open_findings),
            "waivers file": relcheck_config.security.waivers or "none",
            "waivers": len(release_waivers),
        },
    )
    evidence.table("Findings and waivers", ["finding", "severity", "what", "status"], rows)
    unused = [w for w in release_waivers if w.finding and not any(w.covers(ids) for *_, ids, _ in findings)]
    for waiver in unused if judged else []:  # a scan that did not run found nothing to waive
        evidence.warn(f"waiver {waiver.id} names {waiver.finding}, which is no longer found: remove it")
    code_change = (
        bandit_before.compare([f for f in still_open if f in code], code)
        if judged
        else change.Change(missing=bandit_scan.not_judged)
    )
    audit_change = audit_before.compare([f for f in still_open if f not in code], dependency_audit.findings)
    record(evidence, "Open findings", audit_before.release, code_change + audit_change)
    assert not open_findings, f"{len(open_findings)} finding(s) neither fixed nor validly waived: " + ", ".join(
        open_findings[:5]
    )
    require(judged, f"the code scan is not verified: {bandit_scan.not_judged}")
    gaps = dependency_audit.problems + dependency_audit.gaps + dependency_audit.not_audited
    require(not gaps, "the dependency audit is not complete: " + "; ".join(gaps[:3]))
    if waived:
        evidence.waived(f"{len(waived)} finding(s) accepted by waiver: {', '.join(waived)}")


@pytest.mark.post_deploy  # re-verified live on the deployed service
@pytest.mark.item("Security Checks", "Access controls verified")
def test_access_controls(access_matrix, evidence):
    evidence.table(
        "Access matrix",
        ["method", "path", "role", "expected", "got", "detail"],
        [
            (p.method, p.path, p.role, p.expected, p.got if p.got is not None else "no answer", p.detail)
            for p in access_matrix
        ],
    )
    deviations = [p for p in access_matrix if p.judged and not p.ok]
    assert not deviations, f"{len(deviations)} deviation(s): " + "; ".join(
        f"{p.method} {p.path} as {p.role}: expected {p.expected}, got {p.got}" for p in deviations[:5]
    )
    unjudged = [p for p in access_matrix if not p.judged]
    require(
        not unjudged,
        f"{len(unjudged)} request(s) made no access decision: "
        + "; ".join(f"{p.method} {p.path} as {p.role}: {p.got or p.detail}" for p in unjudged[:5]),
    )


@pytest.mark.item("Security Checks", "Access controls verified")
def test_access_controls_conformance(api_conformance, api_plan, evidence):
    run = api_conformance
    failures = run.failures_of(conformance.ACCESS_CHECKS)
    evidence.kv("Conformance run (Schemathesis)", run.facts(api_plan))
    evidence.table("Ignoring their declared auth", conformance.HEADERS, conformance.rows(failures))
    assert not failures, f"{len(failures)} operation(s) ignore their declared auth: {conformance.labels(failures)}"
    require(not run.unjudged, run.unjudged)
    if run.incomplete:
        evidence.warn(run.incomplete)


@pytest.mark.post_deploy  # re-verified live on the deployed service
@pytest.mark.item("Security Checks", "Data protection confirmed")
def test_data_protection(data_protection, evidence):
    findings = data_protection.findings
    evidence.kv("Scope", data_protection.scope)
    evidence.table("Findings", ["where", "problem"], [(f.where, f.problem) for f in findings])
    if data_protection.scope["plain http"].startswith("allowed"):
        evidence.warn("plain http, allowed for an internal-only service (security.data_protection.allow_plain_http)")
    assert not findings, f"{len(findings)} data-protection finding(s): " + "; ".join(
        f"{f.where}: {f.problem}" for f in findings[:4]
    )
    require(not data_protection.not_checked, "; ".join(data_protection.not_checked))


@pytest.mark.post_deploy  # re-verified live on the deployed service
@pytest.mark.item("Security Checks", "Audit logging enabled")
def test_audit_logging(audit_trial, relcheck_config, evidence):
    cfg, answer = relcheck_config.security.audit_trail, audit_trial.answer
    evidence.kv("Action", {"request": answer.describe(), "as": f"{cfg.action.role} ({cfg.actor})"})
    assert answer.ok, f"the audited action failed: {answer.describe()}"
    assert audit_trial.object_id is not None, f"the answer has no {cfg.object_field!r} naming the changed object"
    evidence.table(
        f"Audit records for {audit_trial.object_id}",
        ["actor", "action", "object", "time"],
        [(r.actor, r.action, r.object, r.time) for r in audit_trial.records],
    )
    assert audit_trial.found, (
        f"no audit record of {cfg.expect_action} on {audit_trial.object_id} by {cfg.actor} "
        f"within {cfg.window_s:g}s ({len(audit_trial.records)} other record(s))"
    )


@pytest.mark.item("Security Checks", "Security documentation updated")
def test_security_documentation(relcheck_config, release_changes, release_range, evidence):
    cfg = relcheck_config.security.docs
    problems, _ = completeness(relcheck_config.source, [cfg.file], cfg.placeholders)
    path = relcheck_config.source / cfg.file
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    contact = re.search(cfg.contact_pattern, text)
    sensitive = matching(release_changes, cfg.sensitive_paths)
    doc_changed = cfg.file in release_changes
    evidence.kv(
        cfg.file,
        {
            "reporting contact": contact.group(0) if contact else "none",
            f"security-relevant files changed since {release_range[0]}": ", ".join(sensitive) or "none",
            f"{cfg.file} changed since {release_range[0]}": doc_changed,
        },
    )
    evidence.table("Problems", ["document", "problem"], [(p.document, p.problem) for p in problems])
    assert not problems, "; ".join(f"{p.document}: {p.problem}" for p in problems[:3])
    assert contact, f"{cfg.file} names no reporting contact"
    assert doc_changed or not sensitive, (
        f"security-relevant code changed since {release_range[0]} ({', '.join(sensitive[:3])}) but {cfg.file} did not"
    )
