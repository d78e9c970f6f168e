"""Rollback Procedure / Post-Rollback (service status and health checks: see test_post_deploy.py)."""

import pytest

from relcheck.core.statuses import require
from relcheck.probes import notify
from relcheck.signing.attestations import confirmed

pytestmark = pytest.mark.post_rollback


@pytest.mark.item("Post-Rollback", "Check data integrity")
def test_data_integrity(data_integrity, deploy_record, evidence):
    backed_up = deploy_record["backup"]
    evidence.kv(
        "Compared with", {"backup": backed_up["path"], "sha256": backed_up["sha256"], "taken": deploy_record["started"]}
    )
    evidence.table(
        "Backup vs database now",
        ["table", "backup rows", "rows now", "equal"],
        [(c.table, c.source_rows, c.restored_rows, "yes" if c.equal else "NO") for c in data_integrity.since_backup],
    )
    evidence.table("Invariants, foreign keys", ["check", "of", "result"], data_integrity.rows)
    different = data_integrity.different
    assert not different, f"the database differs from the backup in: {', '.join(different)}"
    assert not data_integrity.problems, "; ".join(data_integrity.problems)
    require(not data_integrity.unverified, "; ".join(data_integrity.unverified))


@pytest.mark.item("Post-Rollback", "Notify stakeholders")
def test_notify_rollback(rollback_notice, evidence):
    rollback_notice.record(evidence)
    require(rollback_notice.deliveries, notify.NO_CHANNEL)
    assert not rollback_notice.refused, f"notice not accepted by {rollback_notice.refused}"


@pytest.mark.item("Post-Rollback", "Document issues")
def test_document_issues(incident, attestations, evidence):
    evidence.table(
        "Triggers that fired",
        ["trigger", "checks", "reason"],
        [(t["trigger"], ", ".join(t["checks"]) or "-", t["reason"]) for t in incident.get("triggers", [])],
    )
    evidence.table("Failed items", ["item", "status", "reason"], incident.get("failed_items", []))
    steps = incident.get("rollback_steps", [])
    evidence.table(
        "Rollback steps",
        ["step", "ok", "exit statuses", "detail"],
        [(s["step"], "yes" if s["ok"] else "NO", s["exit statuses"], s["detail"]) for s in steps],
    )
    evidence.kv("Data integrity after the restore", incident.get("data_integrity") or {"result": "none recorded"})
    evidence.table("Timeline", ["time", "event"], incident.get("timeline", []))
    failed = [s["step"] for s in steps if not s["ok"]]
    assert not failed, f"rollback step failed: {', '.join(failed)}"
    missing = [k for k in ("triggers", "rollback_steps", "data_integrity") if not incident.get(k)]
    assert not missing, f"the incident record lacks: {', '.join(missing)}"
    assert incident["data_integrity"].get("equal"), (
        f"the restored data differs from the backup: {', '.join(incident['data_integrity'].get('different', []))}"
    )
    root_cause = attestations.get("Rollback Procedure / Post-Rollback :: Document issues", [])
    confirmed(root_cause, evidence, "the root cause")


@pytest.mark.item("Post-Rollback", "Plan resolution")
def test_plan_resolution(attestations, evidence):
    confirmed(attestations.get("Rollback Procedure / Post-Rollback :: Plan resolution", []), evidence)
