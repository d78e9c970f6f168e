"""Post-Release Tasks: monitoring from the live service's metrics and database, the documents software writes,
notices and the status board."""

from dataclasses import asdict

import psycopg
import pytest
from fakes import WebhookSink

from conftest import LATENCY_FAULT_MS, background_traffic
from relcheck.core import config as config_module
from relcheck.core import records
from relcheck.ops.deploy import CommandRun, Record, StepResult
from relcheck.probes import backup
from relcheck.run.runner import merge
from relcheck.target.embedded import EmbeddedRuntime

MONITORING = [
    "test_monitor_system_health",
    "test_response_times[post_release]",
    "test_error_rates[post_release]",
    "test_check_resource_usage",
]


@pytest.mark.parametrize("check", MONITORING)
def test_monitoring_passes_on_the_healthy_service(healthy_run, check):
    assert healthy_run.status(check) == "pass", healthy_run.reason(check)


def test_without_records_or_channels_the_documents_and_notices_are_not_verified(healthy_run):
    for check in (
        "test_verify_data_integrity",
        "test_record_deployment_notes",
        "test_notify_release_done",
        "test_update_status_board",
        "test_notify_rollback",
        "test_document_issues",
    ):
        assert healthy_run.status(check) == "not verified", check
    assert healthy_run.status("test_plan_resolution") == "pending attestation"


def traffic(target, requests: int = 40) -> None:
    for n in range(requests):
        target.http.get(f"/v1/kundli/{n + 1}", role="viewer")
        target.version()


def test_monitoring_fails_on_latency_errors_and_memory(bench, faulty):
    target = faulty(
        latency={"route": "GET /v1/kundli/{chart_id}", "ms": LATENCY_FAULT_MS}, error_rate=0.2, memory_hog_mb=450
    )
    with background_traffic([target], lead_s=0, clients=2):  # inside the window: reads of a chart, slow and failing
        checked = bench.run(
            bench.config(target=target), "-m", "post_release", "-k", "response_times or error_rates or resource"
        )
    assert checked.reason("test_response_times[post_release]").startswith("p95 over the limit: GET /v1/kundli")
    assert "requests > budget 1.0%" in checked.reason("test_error_rates[post_release]")
    assert checked.reason("test_check_resource_usage").startswith("memory")


def test_deployment_notes_status_report_and_data_integrity(bench, default_config, monkeypatch):
    runtime = EmbeddedRuntime(default_config, faults={})
    try:
        target = runtime.start()
        traffic(target, 3)
        reference_data = {"integrity": {"unchanged_tables": ["users"]}}  # a table no request of the traffic writes
        config = bench.config(reference_data, target=target)
        for name, value in bench.env.items():
            monkeypatch.setenv(name, value)
        cfg = config_module.load(config)
        with target.database() as conn:
            tables = {t: asdict(f) for t, f in backup.fingerprints(conn).items()}
        record = Record(
            "deploy",
            "kundli-service",
            "1.1.0",
            "v1.1.0",
            "2026-11-25T10:00:00+00:00",
            "2026-11-25T10:01:00+00:00",
            True,
            steps=[
                StepResult("Stop application services", "stop", 0.5, True, "stopped", "t0", "t1"),
                StepResult(
                    "Run migrations", "alembic", 1.5, True, "ok", "t1", "t2", [CommandRun("alembic", 0, "a" * 64)]
                ),
            ],
            backup={"path": "x.dump", "sha256": "0" * 64, "tables": tables},
        )
        record.save(records.deploy_record_path(cfg))
        checked = bench.run(config, "-m", "post_release or post_rollback", "-k", "notes or integrity")
        for check in ("test_record_deployment_notes", "test_verify_data_integrity", "test_data_integrity"):
            assert checked.status(check) == "pass", (check, checked.reason(check))
        notes = (records.release_dir(cfg) / "deployment-notes.md").read_text()
        assert "# Deployment notes: kundli-service 1.1.0" in notes
        assert "| Run migrations | t1 | t2 | 0 | aaaaaaaaaaaaaaaa | ok: ok |" in notes
        typo = bench.config(
            merge(reference_data, {"integrity": {"invariants": {"typo": "SELECT 1 FROM nowhere"}}}), target=target
        )
        checked = bench.run(typo, "-m", "post_release", "-k", "integrity")
        assert checked.status("test_verify_data_integrity") == "not verified"
        assert checked.reason("test_verify_data_integrity") == (
            "invariant 'typo' could not run: relation \"nowhere\" does not exist (integrity.invariants)"
        )
        birth = {"datetime": "1990-08-15T10:00:00+05:30", "latitude": 28.61, "longitude": 77.21}
        chart = target.http.request("POST", "/v1/kundli", "operator", json_body={"name": "after", "birth": birth})
        with psycopg.connect(runtime.pg.admin_dsn(cfg.embedded.database), autocommit=True) as conn:
            conn.execute("UPDATE users SET created_at = created_at - interval '1 day'")  # every row rewritten
            conn.execute("UPDATE charts SET latitude = 123 WHERE id = %s", (chart.json["id"],))
            conn.execute("SET session_replication_role = replica")  # no foreign-key triggers: a bulk load's orphan
            conn.execute("INSERT INTO api_tokens (user_id, token_hash) VALUES (999999, 'orphan')")
        checked = bench.run(config, "-m", "post_release", "-k", "integrity")
        assert checked.reason("test_verify_data_integrity") == (
            "public.users must be unchanged but differs from the backup (3 -> 3 rows, checksum changed); "
            "invariant 'charts on the globe' violated by 1 rows; "
            "1 rows of public.api_tokens(user_id) -> public.users point at no row (api_tokens_user_id_fkey)"
        )
        with psycopg.connect(target.dsn, autocommit=True) as conn:  # relcheck's own sessions are read-only
            conn.execute("DELETE FROM audit_log")
        checked = bench.run(config, "-m", "post_release or post_rollback", "-k", "integrity or status_report")
        assert checked.reason("test_verify_data_integrity").startswith(
            "rows that existed before the deploy are gone: public.audit_log"
        )
        assert checked.reason("test_data_integrity") == (
            "the database differs from the backup in: public.api_tokens, public.audit_log, public.charts, public.users"
        )
        assert checked.reason("test_prepare_status_report") == (
            "no complete run of pre_release, pre_deploy, post_deploy to report on"
        )
        assert "| post_release-or-post_rollback |" not in (records.release_dir(cfg) / "status-report.md").read_text()
    finally:
        runtime.stop()


def test_release_notice_and_status_board_through_webhooks(bench):
    sink = WebhookSink()
    try:
        config = bench.config({"notify": {"webhook": {"url": sink.url}, "status_board": {"url": sink.url}}})
        checked = bench.run(config, "-m", "post_release or post_rollback", "-k", "notify or status_board")
        assert checked.status("test_notify_release_done") == "pass"
        assert checked.status("test_notify_rollback") == "pass"
        assert checked.status("test_update_status_board") == "pass"
        assert any("released" in m for m in sink.messages) and any(m.startswith("*status*") for m in sink.messages)
        sink.status = 503
        checked = bench.run(config, "-m", "post_release or post_rollback", "-k", "notify or status_board")
        assert checked.reason("test_update_status_board").startswith("status board did not accept the update: HTTP 503")
        for check in ("test_notify_release_done", "test_notify_rollback"):
            assert checked.reason(check).startswith("notice not accepted by webhook: HTTP 503"), check
    finally:
        sink.close()
