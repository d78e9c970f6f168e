"""Pre-Deployment, Post-Deployment, Rollback Triggers and Post-Rollback: each check passes on the healthy service
and fails with the matching fault; the rehearsal deploys and rolls back with zero rows lost."""

import json

import pytest
from fakes import MailSink, WebhookSink

from conftest import LATENCY_FAULT_MS, TEST_CHANGES
from relcheck.ops.rehearsal import rehearse
from relcheck.run.runner import merge

PRE_DEPLOY = [
    "test_backup_current_system",
    "test_prepare_rollback_plan",
    "test_verify_dependencies",
    "test_check_system_resources",
    "test_prepare_monitoring",
]
TRIGGERS = [
    "Critical service failure",
    "Unacceptable performance",
    "Data integrity issues",
    "Security vulnerabilities",
    "Compliance violations",
]
POST_DEPLOY = [
    "test_service_is_running[post_deploy]",
    "test_health_checks[post_deploy]",
    "test_check_logs_for_errors",
    "test_verify_metrics_collection",
    "test_critical_paths",
]


@pytest.mark.parametrize("check", PRE_DEPLOY + POST_DEPLOY)
def test_passes_on_the_healthy_reference_service(healthy_run, check):
    assert healthy_run.status(check) == "pass", healthy_run.reason(check)


def test_monitor_performance_without_a_pre_deploy_snapshot_only_warns(healthy_run):
    """In one run of every phase, post-deploy checks run before pre-deploy ones: no snapshot yet. (With the
    snapshot it passes: see the rehearsal.)"""
    assert healthy_run.status("test_monitor_performance") == "warn"
    assert healthy_run.reason("test_monitor_performance").startswith("no pre-deploy smoke snapshot")


def test_emergency_contacts_pass_and_a_placeholder_fails(healthy_run, bench, scratch_source):
    contacts = [c for c in healthy_run.statuses() if c.startswith("test_emergency_contact[")]
    assert len(contacts) == 10 and all(healthy_run.status(c) == "pass" for c in contacts)
    path = scratch_source / "CONTACTS.md"
    contact = "- Database Admin: Meera Nair <meera.nair@kundli.example>, +91 80 5555 0103"
    path.write_text(path.read_text().replace(contact, "- Database Admin: [Contact]"))
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}), "-k", "emergency_contact")
    assert checked.status("test_emergency_contact[Technical Team: Database Admin]") == "fail"
    assert checked.status("test_emergency_contact[Technical Team: Lead Developer]") == "pass"


# --- Pre-Deployment ------------------------------------------------------------------------------------------
@pytest.fixture
def channels():
    webhook, mail = WebhookSink(), MailSink()
    yield webhook, mail
    webhook.close()
    mail.close()


def notify_config(webhook, mail) -> dict:
    return {
        "notify": {
            "window": "2026-11-26 10:00-11:00 IST",
            "rollback_owner": "Operations Team Lead",
            "webhook": {"url": webhook.url},
            "smtp": {
                "host": "127.0.0.1",
                "port": mail.port,
                "sender": "releases@kundli.example",
                "recipients": ["stakeholders@kundli.example"],
            },
        }
    }


def test_stakeholders_are_notified_through_webhook_and_mail(bench, healthy, channels):
    webhook, mail = channels
    checked = bench.run(bench.config(notify_config(webhook, mail), target=healthy), "-k", "notify_stakeholders")
    assert checked.status("test_notify_stakeholders") == "pass", checked.reason("test_notify_stakeholders")
    notice = webhook.messages[0]
    assert "kundli-service 1.1.0" in notice and "Rollback owner: Operations Team Lead" in notice
    assert mail.messages[0][1] == ["stakeholders@kundli.example"]
    assert "Database Admin: Meera Nair" in mail.messages[0][2]
    webhook.status = 500
    checked = bench.run(bench.config(notify_config(webhook, mail), target=healthy), "-k", "notify_stakeholders")
    assert checked.status("test_notify_stakeholders") == "fail"
    assert checked.reason("test_notify_stakeholders").startswith("notice not accepted by webhook: HTTP 500")


def test_notify_without_a_channel_is_not_verified(healthy_run):
    assert healthy_run.status("test_notify_stakeholders") == "not verified"


def test_could_not_check_never_fires_a_trigger(bench, healthy):
    """A service without metrics or a version route: those checks are not verified, their triggers are not
    evaluated, and the smoke is BLOCKED (exit 1), never ROLLBACK."""
    config = bench.config({"target": {"routes": {"metrics": "/no-metrics", "version": "/no-version"}}}, target=healthy)
    checked = bench.run(config, "-m", "post_deploy")
    assert checked.verdict == "BLOCKED" and checked.returncode == 1, checked.manifest.get("verdict_reasons")
    assert checked.status("test_verify_metrics_collection") == "not verified"
    assert checked.reason("test_verify_metrics_collection") == "GET /no-metrics -> HTTP 404: no Prometheus metrics here"
    assert checked.status("test_service_is_running[post_deploy]") == "not verified"
    assert checked.reason("test_service_is_running[post_deploy]") == (
        f"running and answering; the version is not verified: GET {healthy.base_url}/no-version -> HTTP 404"
    )
    critical = checked.reason("test_rollback_trigger[Critical service failure]")
    assert checked.status("test_rollback_trigger[Critical service failure]") == "not verified"
    assert critical.startswith("not evaluated: test_service_is_running[post_deploy] not verified (running and")
    assert checked.manifest["decision"] == {
        "name": "BLOCKED",
        "fired": [],
        "not_evaluated": [
            {"trigger": t, "reason": checked.reason(f"test_rollback_trigger[{t}]")}
            for t in (
                "Critical service failure",
                "Unacceptable performance",
                "Data integrity issues",  # the pre-deploy backup never ran for this release
                "Security vulnerabilities",  # nor did the pre-release scans
            )
        ],
    }
    assert "test_backup_current_system no result (no complete run yet: run pytest -m pre_deploy" in (
        checked.reason("test_rollback_trigger[Data integrity issues]")
    )


@pytest.mark.parametrize(
    "source, status, reason",
    [
        ({"version": {"openapi": True}}, "pass", ""),
        (
            {"routes": {"version": "/health"}, "version": {"pointer": "/schema_head"}},
            "fail",
            "/schema_head in /health's answer reports",
        ),
        ({"version": {"header": "X-Release"}}, "not verified", "has no X-Release header"),
        ({"routes": {"version": ""}}, "not verified", "no version source configured"),
    ],
    ids=["openapi-info", "json-pointer", "missing-header", "no-source"],
)
def test_the_version_comes_from_the_configured_source(bench, healthy, source, status, reason):
    checked = bench.run(bench.config({"target": source}, target=healthy), "-k", "service_is_running")
    assert checked.status("test_service_is_running[post_deploy]") == status
    assert reason in checked.reason("test_service_is_running[post_deploy]")


def test_metrics_switched_off_are_not_verified(bench, healthy):
    checked = bench.run(bench.config({"target": {"routes": {"metrics": ""}}}, target=healthy), "-k", "metrics_coll")
    assert checked.status("test_verify_metrics_collection") == "not verified"
    assert checked.reason("test_verify_metrics_collection") == (
        "no metrics route configured (target.routes.metrics is empty)"
    )


def test_metrics_collection_watches_counters_over_the_critical_paths_not_health(bench, faulty):
    """A request counter that leaves the health route out (a common choice) still advances: the traffic between
    the scrapes is the critical paths; a counter they do not move fails; without critical paths it is not verified."""
    target = faulty(uncounted_health=True)
    checked = bench.run(bench.config(target=target), "-k", "metrics_collection")
    assert checked.status("test_verify_metrics_collection") == "pass", checked.reason("test_verify_metrics_collection")
    titles = [b["title"] for b in checked.evidence("test_verify_metrics_collection")]
    assert "Counters over the critical paths (4 requests)" in titles, titles
    unmoved = {"post_deploy": {"advancing_counters": ["kundli_contract_violations_total"]}}
    checked = bench.run(bench.config(unmoved, target=target), "-k", "metrics_collection")
    assert checked.reason("test_verify_metrics_collection") == (
        "counter(s) did not advance over the critical paths (4 requests): kundli_contract_violations_total"
    )
    checked = bench.run(bench.config({"post_deploy": {"critical_paths": []}}, target=target), "-k", "metrics_coll")
    assert checked.status("test_verify_metrics_collection") == "not verified"
    assert checked.reason("test_verify_metrics_collection").startswith("no traffic the service counts between")


def test_no_trigger_fires_on_the_healthy_service(healthy_run):
    triggers = {
        name: status
        for name, (status, _) in healthy_run.statuses().items()
        if name.startswith("test_rollback_trigger[")
    }
    assert len(triggers) == 5 and set(triggers.values()) == {"pass"}, triggers


def test_a_truncated_backup_fails_its_proof(bench, healthy):
    truncate = ["sh", "-c", "{pg_dump} -Fc --dbname '{dsn}' | head -c 4000 > '{dump}'"]
    checked = bench.run(bench.config({"deploy": {"backup_command": truncate}}, target=healthy), "-k", "backup_current")
    assert checked.status("test_backup_current_system") == "fail"
    assert "pg_restore failed" in checked.reason("test_backup_current_system")


BROKEN_DOWNGRADE = {
    "KUNDLI_DATABASE_URL": "{dsn}",
    "KUNDLI_TEST_MODE": "1",
    "KUNDLI_FAULTS": json.dumps({"broken_downgrade": True}),
}


def test_rollback_plan_fails_when_the_down_migration_is_broken(bench, healthy):
    checked = bench.run(bench.config({"deploy": {"env": BROKEN_DOWNGRADE}}, target=healthy), "-k", "rollback_plan")
    assert checked.status("test_prepare_rollback_plan") == "fail"
    reason = checked.reason("test_prepare_rollback_plan")
    assert reason.startswith("down-migration rehearsal failed: downgrade to 0001 failed")


def test_dependencies_pinned_consistent_and_supported(bench, healthy, scratch_source):
    requirements = scratch_source / "requirements.txt"
    requirements.write_text(requirements.read_text().replace("starlette==1.10.0", "starlette==0.20.0"))
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}, target=healthy), "-k", "dependencies")
    reason = checked.reason("test_verify_dependencies")
    assert reason.startswith("the pins conflict: ") and "fastapi 0.165.0 depends on starlette" in reason, reason
    requirements.write_text(requirements.read_text().replace("starlette==0.20.0", "starlette>=1.0"))
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}, target=healthy), "-k", "dependencies")
    assert checked.reason("test_verify_dependencies") == (
        "not pinned to one version: requirements.txt:3: starlette>=1.0 (not pinned to one PEP 440 version)"
    )
    checked = bench.run(bench.config({"deploy": {"supported_postgres": ">=17"}}, target=healthy), "-k", "dependencies")
    assert checked.reason("test_verify_dependencies") == "PostgreSQL 16.2 is outside the supported range >=17"


def test_system_resources_and_monitoring_fail_when_short(bench, faulty):
    target = faulty(missing_metric="kundli_job_queue_length")
    host = {"target": {"service": {"command_prefix": ["sh", "-c"]}}}  # the service host, reached like ssh
    short = {"min_memory_mb": 10**9, "min_connection_headroom": 10**6, "max_load_per_core": 1e-9}
    changes = merge(host, {"deploy": short})
    checked = bench.run(bench.config(changes, target=target), "-k", "system_resources or prepare_monitoring")
    reason = checked.reason("test_check_system_resources")
    assert "memory" in reason and "connection headroom" in reason and "load per core" in reason
    measured_on = checked.facts("test_check_system_resources", "Host and database")["measured on"]
    assert measured_on.endswith("(through sh -c); the database server via SQL")
    assert checked.reason("test_prepare_monitoring").endswith("missing from /metrics: kundli_job_queue_length")


def test_a_remote_hosts_memory_and_load_are_not_taken_from_relchecks_machine(bench, healthy):
    remote = {"deploy": {"min_memory_mb": 10**9}, "target": {"service": {"command_prefix": []}}}
    checked = bench.run(bench.config(remote, target=healthy), "-k", "system_resources")
    assert checked.status("test_check_system_resources") == "not verified"
    assert checked.reason("test_check_system_resources").startswith(
        "the service host's memory and load are not measured: a remote target needs target.service.command_prefix"
    )


# --- Post-Deployment and the decision ------------------------------------------------------------------------
def test_post_deploy_checks_fail_on_their_faults_and_decide_rollback(bench, faulty):
    target = faulty(
        wrong_version=True,
        log_errors=True,
        missing_metric="kundli_cache_hits",
        broken_read=True,
        admin_open_to_viewers=True,
        no_audit=True,
    )
    checked = bench.run(bench.config(target=target), "-m", "post_deploy")
    assert (
        checked.reason("test_service_is_running[post_deploy]")
        == "/version in /version's answer reports '0.0.0-wrong', expected '1.1.0'"
    )
    assert checked.reason("test_check_logs_for_errors").startswith(
        "error line(s) in the log", 2
    ) or "error line(s) in the log" in checked.reason("test_check_logs_for_errors")
    assert checked.reason("test_verify_metrics_collection") == "metric families missing: kundli_cache_hits_total"
    assert checked.reason("test_critical_paths").startswith("read it back: expected 200, got GET")
    fired = {trigger: checked.reason(f"test_rollback_trigger[{trigger}]") for trigger in TRIGGERS}
    assert fired["Critical service failure"].startswith("fired: test_service_is_running[post_deploy] fail")
    assert "test_verify_metrics_collection fail (metric families missing" in fired["Unacceptable performance"]
    assert fired["Data integrity issues"].startswith("fired: test_critical_paths fail (read it back")
    assert (
        fired["Security vulnerabilities"].startswith("fired: test_access_controls fail")
        and "GET /v1/admin/audit as viewer: expected 403, got 200" in fired["Security vulnerabilities"]
    )
    assert fired["Compliance violations"].startswith("fired: test_audit_logging fail (no audit record")
    assert checked.verdict == "ROLLBACK" and checked.returncode == 3


def test_a_failure_the_previous_release_shares_is_pre_existing_not_a_rollback(bench, faulty):
    target = faulty(no_audit=True)
    previous = bench.config({"release": {"version": "1.0.0", "previous_version": "0.9.0"}}, target=target)
    assert bench.run(previous, "-m", "post_deploy").status("test_audit_logging") == "fail"  # 1.0.0's complete run
    checked = bench.run(bench.config(target=target), "-m", "post_deploy", "-k", "audit_logging or Compliance")
    assert checked.reason("test_rollback_trigger[Compliance violations]").endswith("[fails in 1.0.0 too]")
    (fired,) = checked.manifest["decision"]["fired"]
    assert fired["pre_existing"] and fired["checks"] == ["test_audit_logging"]
    assert checked.manifest["decision"]["name"] == "BLOCKED"
    reasons = checked.manifest["verdict_reasons"]
    assert any(r.startswith("pre-existing failure, rolling back would not fix it") for r in reasons)


def test_an_unhealthy_service_fails_health_and_monitoring_compares_with_the_pre_deploy_smoke(bench, faulty, healthy):
    config = bench.config(target=healthy)
    assert bench.run(config, "-k", "prepare_monitoring").status("test_prepare_monitoring") == "pass"
    slow = faulty(latency={"route": "GET /v1/kundli/{chart_id}", "ms": LATENCY_FAULT_MS})
    checked = bench.run(bench.config(target=slow), "-k", "monitor_performance")
    assert checked.status("test_monitor_performance") == "fail"  # its SLA; the few smoke samples alone only warn
    assert "GET /v1/kundli/{chart_id} p" in checked.reason("test_monitor_performance")
    sick = faulty(healthy=False, unhealthy=True)
    checked = bench.run(bench.config(target=sick), "-k", "health_checks")
    assert checked.reason("test_health_checks[post_deploy]").startswith("health check failed")


# --- the rehearsal -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_rehearsal_deploys_and_rolls_back_with_zero_rows_lost(tmp_path, default_config):
    result = rehearse(default_config, tmp_path, log=lambda message: None, changes=TEST_CHANGES)
    phases = {p.name: p for p in result.phases}
    assert result.ok, [(p.name, p.detail) for p in result.phases if not p.ok]
    assert result.rows_lost == 0 and phases["zero rows lost"].ok
    assert "the upgrade's predicted blocking time " in phases["rehearse the down-migration on a scratch copy"].detail
    # 1.1.0 wrote charts in another ayanamsa (deploy.release_seed) that its downgrade drops; 1.0.0's health answers
    # 503 at the 1.1.0 schema revision
    assert (
        "; rollback: needs the restore: the downgrade loses data written by this release (charts.ayanamsa: 20 values)"
        "; code-only: the previous release fails on start-up: "
    ) in phases["rehearse the down-migration on a scratch copy"].detail
    assert [p.name for p in result.phases] == [
        "start 1.0.0 with data",
        "pre-deploy checks",
        "rehearse the down-migration on a scratch copy",
        "deploy 1.1.0",
        "post-deploy checks",
        "roll back to 1.0.0",
        "post-rollback checks",
        "zero rows lost",
    ]
    incident = json.loads((tmp_path / "reports/kundli-service-1.1.0/rollback/incident.json").read_text())
    assert incident["timeline"] and [t["trigger"] for t in incident["triggers"]] == ["rehearsal"]
    assert incident["data_integrity"]["equal"] and incident["data_integrity"]["tables compared"] >= 2
    assert all(step["ok"] for step in incident["rollback_steps"])
    assert [0, 0, 0] in [step["exit statuses"] for step in incident["rollback_steps"]]  # fetch, checkout, install
    deployed = json.loads((tmp_path / "reports/kundli-service-1.1.0/deploy/record.json").read_text())
    assert all(step["started"] and step["finished"] for step in deployed["steps"])
    assert all(len(c["output_sha256"]) == 64 for step in deployed["steps"] for c in step["commands"])
    assert (tmp_path / "rehearsal.json").exists()


@pytest.mark.parametrize(
    "changes, phase, reason",
    [
        (
            {"deploy": {"env": BROKEN_DOWNGRADE}},
            "rehearse the down-migration on a scratch copy",
            "downgrade to 0001 failed",
        ),
        (
            {"deploy": {"backup_command": ["sh", "-c", "{pg_dump} -Fc --dbname '{dsn}' | head -c 4000 > '{dump}'"]}},
            "pre-deploy checks",
            "Backup current system: fail",
        ),
    ],
)
def test_rehearsal_stops_on_a_broken_down_migration_or_a_corrupt_backup(
    tmp_path, default_config, changes, phase, reason
):
    result = rehearse(default_config, tmp_path, log=lambda message: None, changes=merge(TEST_CHANGES, changes))
    assert not result.ok
    failed = next(p for p in result.phases if not p.ok)
    assert failed.name == phase and reason in failed.detail
