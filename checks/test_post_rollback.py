"""Rollback Procedure / Post-Rollback (service status and health checks: see test_post_deploy.py)."""

import pytest

from relcheck import backup, contacts, notify, records
from relcheck.verdict import Pending, require

pytestmark = pytest.mark.post_rollback


@pytest.mark.item("Post-Rollback", "Check data integrity")
def test_data_integrity(target, relcheck_config, evidence):
    deployed = records.read(records.deploy_record_path(relcheck_config))
    require(deployed and deployed.get("backup", {}).get("tables"), "no deploy record with a backup to compare with")
    taken = {t: backup.TableFingerprint(**f) for t, f in deployed["backup"]["tables"].items()}
    with target.database() as conn:
        now = backup.fingerprints(conn)
    rows = backup.compare(taken, now)
    evidence.kv("Compared with", {"backup": deployed["backup"]["path"], "sha256": deployed["backup"]["sha256"],
                                  "taken": deployed["started"]})
    evidence.table("Backup vs database now", ["table", "backup rows", "rows now", "equal"],
                   [(c.table, c.source_rows, c.restored_rows, "yes" if c.equal else "NO") for c in rows])
    different = [c.table for c in rows if not c.equal]
    assert not different, f"the database differs from the backup in: {', '.join(different)}"


@pytest.mark.item("Post-Rollback", "Notify stakeholders")
def test_notify_rollback(relcheck_config, evidence):
    release, cfg = relcheck_config.release, relcheck_config.notify
    incident = records.read(records.incident_path(relcheck_config)) or {}
    subject, body = notify.compose("rolled back", release.product, release.version, cfg,
                                   contacts.of_release(relcheck_config),
                                   [f"Running again: {release.previous_version}",
                                    f"Triggers: {', '.join(incident.get('triggers', [])) or 'see the incident record'}"])
    deliveries = notify.send(cfg, subject, body)
    evidence.text("Notice", f"{subject}\n\n{body}")
    evidence.table("Deliveries", ["channel", "accepted", "detail"],
                   [(d.channel, "yes" if d.accepted else "NO", d.detail) for d in deliveries])
    require(deliveries, "no notification channel configured (notify.webhook / notify.smtp)")
    refused = [f"{d.channel}: {d.detail}" for d in deliveries if not d.accepted]
    assert not refused, f"notice not accepted by {'; '.join(refused)}"


@pytest.mark.item("Post-Rollback", "Document issues")
def test_document_issues(relcheck_config, evidence):
    path = records.incident_path(relcheck_config)
    incident = records.read(path)
    require(incident, f"no incident record at {path} (written by relcheck rollback)")
    evidence.kv("Incident record", {"file": path, "opened": incident.get("opened"),
                                    "triggers": ", ".join(incident.get("triggers", [])) or "none recorded"})
    evidence.table("Timeline", ["time", "event"], incident.get("timeline", []))
    evidence.table("Failed items", ["item", "status", "reason"], incident.get("failed_items", []))
    missing = [k for k in ("timeline", "failed_items", "triggers") if not incident.get(k)]
    assert not missing, f"the incident record lacks: {', '.join(missing)}"


@pytest.mark.item("Post-Rollback", "Plan resolution")
def test_plan_resolution(relcheck_config, attestations):
    attested = attestations.get("Post-Rollback :: Plan resolution")
    if not attested:
        raise Pending("a person must attest the resolution plan (relcheck attest --item 'Post-Rollback :: "
                      "Plan resolution' --role ... --note ...)")
