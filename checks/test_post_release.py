"""Post-Release Tasks. Monitoring from the live service (error rates and performance metrics: see
test_monitoring.py); the documents software can write (deployment notes, status report) are written; notices go
through the configured channels; the rest is attested by a person in a release role."""

import pytest

from relcheck.core.statuses import require
from relcheck.probes import notify
from relcheck.signing.attestations import confirmed

pytestmark = pytest.mark.post_release


@pytest.mark.monitoring  # also in every monitoring run: the critical-service-failure trigger reads it
@pytest.mark.item("Post-Release Tasks / Monitoring", "Monitor system health")
def test_monitor_system_health(service_state, health, evidence):
    status, answer = service_state.status, health.answer
    evidence.kv("Now", {"service": status.detail, "health": answer.describe()})
    assert status.running, f"service is not running: {status.detail}"
    assert answer.status == 200, f"health check failed: {answer.describe()}"


@pytest.mark.item("Post-Release Tasks / Monitoring", "Check resource usage")
def test_check_resource_usage(window, relcheck_config, evidence):
    cfg, cpu, memory = relcheck_config.monitoring, window.cpu_percent(), window.memory_mb()
    evidence.kv(
        "Service process",
        {
            "CPU": f"{cpu.value:.1f} % of a core{cpu.on} (limit {cfg.cpu_percent:g})",
            "memory": f"{memory.value:.0f} MB{memory.on} (limit {cfg.memory_mb:g})",
            "measured": cpu.how,
        },
    )
    assert memory.value <= cfg.memory_mb, f"memory {memory.value:.0f} MB > {cfg.memory_mb:g} MB{memory.on}"
    assert cpu.value <= cfg.cpu_percent, f"CPU {cpu.value:.0f} % > {cfg.cpu_percent:g} %{cpu.on}"


@pytest.mark.item("Post-Release Tasks / Monitoring", "Verify data integrity")
def test_verify_data_integrity(data_integrity, evidence):
    rows = [(c.table, c.source_rows, c.restored_rows) for c in data_integrity.since_backup if c.source_rows is not None]
    evidence.table("Rows before the deploy and now", ["table", "before", "now"], rows)
    evidence.table("Unchanged tables, invariants, foreign keys", ["check", "of", "result"], data_integrity.rows)
    assert not data_integrity.lost, f"rows that existed before the deploy are gone: {', '.join(data_integrity.lost)}"
    assert not data_integrity.problems, "; ".join(data_integrity.problems)
    require(not data_integrity.unverified, "; ".join(data_integrity.unverified))


@pytest.mark.item("Post-Release Tasks / Documentation", "Record deployment notes")
def test_record_deployment_notes(deployment_notes, evidence):
    evidence.text(deployment_notes.path.name, deployment_notes.text)
    assert not deployment_notes.problems, "; ".join(deployment_notes.problems)


@pytest.mark.item("Post-Release Tasks / Documentation", "Prepare status report")
def test_prepare_status_report(status_report, evidence):
    evidence.text(status_report.path.name, status_report.text)
    missing = [phase for phase, verdict in status_report.verdicts.items() if verdict is None]
    require(not missing, f"no complete run of {', '.join(missing)} to report on")


HUMAN = [
    ("Post-Release Tasks / Documentation", "Update system documentation"),
    ("Post-Release Tasks / Documentation", "Document issues/resolutions"),
    ("Post-Release Tasks / Documentation", "Update runbooks"),
    ("Post-Release Tasks / Communication", "Schedule review meeting"),
    ("Post-Release Tasks / Communication", "Collect feedback"),
    ("Post-Release Tasks / Communication", "Plan improvements"),
]


@pytest.mark.parametrize("section, item", [pytest.param(s, i, marks=pytest.mark.item(s, i), id=i) for s, i in HUMAN])
def test_attested_task(section, item, attestations, evidence):
    confirmed(attestations.get(f"{section} :: {item}", []), evidence)


@pytest.mark.item("Post-Release Tasks / Communication", "Notify stakeholders")
def test_notify_release_done(released_notice, evidence):
    released_notice.record(evidence)
    require(released_notice.deliveries, notify.NO_CHANNEL)
    assert not released_notice.refused, f"notice not accepted by {released_notice.refused}"


@pytest.mark.item("Post-Release Tasks / Communication", "Update status board")
def test_update_status_board(status_board_update, evidence):
    status, delivery = status_board_update
    evidence.kv("Status board", {"posted": status, "answer": delivery.detail})
    assert delivery.accepted, f"status board did not accept the update: {delivery.detail}"
