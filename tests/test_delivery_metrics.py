"""`relcheck history`: DORA's figures over a release record with known deploys, rollbacks and recoveries."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Workbench, relcheck_cli
from relcheck.run import delivery

DAY0 = "2026-11-01T10:00:00+00:00"


def at(day: int, minutes: int = 0) -> str:
    return f"2026-11-{1 + day:02d}T{10 + minutes // 60:02d}:{minutes % 60:02d}:00+00:00"


def record(reports: Path, release: str, kind: str, started: str, finished: str, ok: bool = True) -> None:
    path = reports / release / kind / "record.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kind": kind, "started": started, "finished": finished, "ok": ok}))


def run(reports: Path, release: str, label: str, finished: str, verdict: str, decision: str = "", partial=()):
    path = reports / release / label / "manifest.json"
    if path.is_file():  # an earlier run of this gate, archived as relcheck archives it
        archived = path.parent / "history" / json.loads(path.read_text())["run"]["finished"].replace(":", "")
        archived.mkdir(parents=True)
        path.rename(archived / "manifest.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    item = {
        "section": "Post-Deployment",
        "item": "Service health",
        "status": "pass" if verdict != "BLOCKED" else "fail",
    }
    manifest = {
        "release_id": release,
        "run": {"label": label, "markexpr": label, "finished": finished, "partial": list(partial)},
        "verdict": verdict,
        "decision": {"name": decision} if decision else None,
        "items": [{**item, "checks": [{"test": "t"}]}, {"section": "S", "item": "unchecked", "status": "not run"}],
    }
    path.write_text(json.dumps(manifest))


def history(reports: Path) -> None:
    """1.0.0 deployed and healthy; 1.1.0 rolled back by its trigger and recovered 30 min later; 1.2.0 rolled back
    by hand and not recovered; 1.3.0 never deployed; 1.4.0's deploy failed (not a deployment)."""
    record(reports, "svc-1.0.0", "deploy", DAY0, DAY0)
    run(reports, "svc-1.0.0", "post_deploy", at(0, 10), "PROCEED", "PROCEED")
    record(reports, "svc-1.1.0", "deploy", at(3), at(3))
    run(reports, "svc-1.1.0", "post_deploy", at(3, 10), "ROLLBACK", "ROLLBACK")
    run(reports, "svc-1.1.0", "post_rollback", at(3, 25), "BLOCKED")  # not yet recovered
    run(reports, "svc-1.1.0", "post_rollback", at(3, 40), "READY")
    run(reports, "svc-1.1.0", "monitoring", at(3, 30), "READY", "PROCEED", partial=["narrowed by -k"])  # partial
    record(reports, "svc-1.1.0", "rollback", at(3, 20), at(3, 30))
    record(reports, "svc-1.2.0", "deploy", at(6), at(6))
    run(reports, "svc-1.2.0", "post_deploy", at(6, 5), "PROCEED", "PROCEED")
    record(reports, "svc-1.2.0", "rollback", at(6, 60), at(6, 70))
    run(reports, "svc-1.3.0", "pre_release", at(7), "READY")
    record(reports, "svc-1.4.0", "deploy", at(8), at(8), ok=False)


def test_dora_figures_over_known_deploys_rollbacks_and_recoveries(tmp_path):
    reports = tmp_path / "reports"
    history(reports)
    found = delivery.dora(reports)
    assert [d.release for d in found.deployments] == ["svc-1.0.0", "svc-1.1.0", "svc-1.2.0"]
    assert found.frequency_per_day == 0.5  # 3 deployments over 6 days
    assert found.change_failure_rate == 2 / 3
    assert [(d.release, d.why) for d in found.failed] == [("svc-1.1.0", "ROLLBACK decision"), ("svc-1.2.0", "rollback")]
    assert found.recovery_times_s == [1800.0]  # ROLLBACK at 10:10 -> the post-rollback READY at 10:40
    assert found.median_recovery_s == 1800.0
    assert delivery.lines(found)[:4] == [
        "deployments: 3",
        "deployment frequency: 0.50 per day",
        "change failure rate: 66.67 % (2 of 3 followed by a ROLLBACK decision or a rollback)",
        "failed deployment recovery time (median): 30.00 min (1 recovered of 2)",
    ]
    assert delivery.lines(found)[-1].endswith("failed (rollback) 2026-11-07T11:00:00+00:00, not recovered")


def test_no_deployment_gives_no_figure(tmp_path):
    found = delivery.dora(tmp_path / "reports")
    assert (found.frequency_per_day, found.change_failure_rate, found.median_recovery_s) == (None, None, None)
    text = generate_latest(delivery.registry(tmp_path / "reports")).decode()
    families = {f.name for f in text_string_to_metric_families(text)}
    assert "relcheck_change_failure_ratio" not in families and "relcheck_deployments" in families


def test_the_prometheus_textfile_has_the_figures_and_each_gates_last_verdict(tmp_path):
    reports = tmp_path / "reports"
    history(reports)
    config = Workbench(tmp_path, {}).config()
    done = relcheck_cli(config, "history", "--dora", "--prometheus", str(tmp_path / "relcheck.prom"))
    assert done.returncode == 0, done.stderr
    assert "change failure rate: 66.67 %" in done.stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families((tmp_path / "relcheck.prom").read_text())
        for s in family.samples
    }
    assert samples[("relcheck_change_failure_ratio", ())] == 2 / 3
    assert samples[("relcheck_recovery_time_seconds", (("release", "svc-1.1.0"),))] == 1800.0
    gate = (("gate", "post_rollback"), ("release", "svc-1.1.0"))
    assert samples[("relcheck_gate_verdict", (*gate, ("verdict", "READY")))] == 1  # the last run, not the archived
    assert ("relcheck_gate_verdict", (*gate, ("verdict", "BLOCKED"))) not in samples
    item = ("item", "Post-Deployment :: Service health")
    assert (
        samples[
            ("relcheck_item_status", (("gate", "post_rollback"), item, ("release", "svc-1.1.0"), ("status", "pass")))
        ]
        == 1
    )
    assert not any(dict(labels).get("gate") == "monitoring" for _, labels in samples)  # a partial run is no verdict


def test_a_record_without_a_time_offset_or_a_verdict_is_one_line_naming_it(tmp_path):
    reports = tmp_path / "reports"
    record(reports, "shop-1.0.0", "deploy", DAY0, DAY0)
    run(reports, "shop-1.0.0", "post-deploy", at(0, 30), "PROCEED", "PROCEED")
    no_verdict = reports / "shop-1.0.0" / "monitoring" / "manifest.json"
    no_verdict.parent.mkdir(parents=True)
    no_verdict.write_text(json.dumps({"run": {"finished": at(0, 40), "label": "monitoring"}}))  # not a run's record
    assert len(delivery.dora(reports).deployments) == 1
    record(reports, "shop-1.1.0", "deploy", "2026-11-02T10:00:00", "2026-11-02T10:05:00")  # naive: which zone?
    config = Workbench(tmp_path, {}).config()
    done = relcheck_cli(config, "history", "--dora")
    deploy_record = reports / "shop-1.1.0" / "deploy" / "record.json"
    assert done.returncode == 2 and done.stderr == (
        f"relcheck: {deploy_record}: '2026-11-02T10:05:00' is not an ISO 8601 time with an offset\n"
    ), done.stderr
