"""Rollback Procedure / Post-Rollback (service status and health checks: see test_post_deploy.py)."""

import pytest

from relcheck.core import records
from relcheck.core.statuses import require
from relcheck.probes import backup, notify
from relcheck.signing.attestations import confirmed

pytestmark = pytest.mark.post_rollback


@pytest.mark.item("Post-Rollback", "Check data integrity")
def test_data_integrity(target, relcheck_config, evidence):
    deployed = records.read(records.deploy_record_path(relcheck_config))
    require(deployed and deployed.get("backup", {}).get("tables"), "no deploy record with a backup to compare with")
    taken = {t: backup.TableFingerprint(**f) for t, f in deployed["backup"]["tables"].items()}
    with target.database() as conn:
        now = backup.fingerprints(conn)
    rows = backup.compare(taken, now)
    evidence.kv(
        "Compared with",
        {"backup": deployed["backup"]["path"], "sha256": deployed["backup"]["sha256"], "taken": deployed["started"]},
    )
    evidence.table(
        "Backup vs database now",
        ["table", "backup rows", "rows now", "equal"],
        [(c.table, c.source_rows, c.restored_rows, "yes" if c.equal else "NO") for c in rows],
    )
    different = [c.table for c in rows if not c.equal]
    assert not different, f"the database differs from the backup in: {', '.join(different)}"


@pytest.mark.item("Post-Rollback", "Notify stakeholders")
def test_notify_rollback(relcheck_config, evidence):
    incident = records.read(records.incident_path(relcheck_config)) or {}
    triggers = ", ".join(incident.get("triggers", [])) or "see the incident record"
    deliveries = notify.deliver(
        relcheck_config,
        "rolled back",
        [f"Running again: {relcheck_config.release.previous_version}", f"Triggers: {triggers}"],
        evidence,
    )
    require(deliveries, notify.NO_CHANNEL)
    assert not notify.refused(deliveries), f"notice not accepted by {notify.refused(deliveries)}"


@pytest.mark.item("Post-Rollback", "Document issues")
def test_document_issues(relcheck_config, evidence):
    path = records.incident_path(relcheck_config)
    incident = records.read(path)
    require(incident, f"no incident record at {path} (written by relcheck rollback)")
    evidence.kv(
        "Incident record",
        {
            "file": path,
            "opened": incident.get("opened"),
            "triggers": ", ".join(incident.get("triggers", [])) or "none recorded",
        },
    )
    evidence.table("Timeline", ["time", "event"], incident.get("timeline", []))
    evidence.table("Failed items", ["item", "status", "reason"], incident.get("failed_items", []))
    missing = [k for k in ("timeline", "failed_items", "triggers") if not incident.get(k)]
    assert not missing, f"the incident record lacks: {', '.join(missing)}"


@pytest.mark.item("Post-Rollback", "Plan resolution")
def test_plan_resolution(attestations, evidence):
    confirmed(attestations.get("Rollback Procedure / Post-Rollback :: Plan resolution", []), evidence)
