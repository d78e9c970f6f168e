"""The run's decisions as plain functions, in-process: an outcome's status, waivers, the phase vocabulary, the trigger
decision as data; and the plugin's wiring through pytester (collection only, nothing started)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date

import pytest

from conftest import DEFAULT_CONFIG
from relcheck.core.checklist import Item
from relcheck.core.errors import TargetError
from relcheck.core.evidence import Evidence
from relcheck.core.statuses import NotVerified, Pending, Status
from relcheck.run import outcome, phases, results, triggers
from relcheck.run.plugin import CHECKS_DIR
from relcheck.signing import waivers
from relcheck.signing.waivers import Waiver

NOT_A_DATE = "expires is not a date (write expires = 2027-01-31)"

pytest_plugins = ["pytester"]


@pytest.mark.parametrize(
    "passed, skipped, when, error, expected",
    [
        (True, False, "call", None, (Status.PASS, "")),
        (False, True, "setup", None, (Status.NOT_VERIFIED, "skipped: no target")),
        (False, False, "call", NotVerified("no samples\nmore"), (Status.NOT_VERIFIED, "no samples")),
        (False, False, "call", Pending("waiting for a signature"), (Status.PENDING, "waiting for a signature")),
        (
            False,
            False,
            "setup",
            RuntimeError("pg_dump failed"),
            (Status.NOT_VERIFIED, "could not set up: RuntimeError: pg_dump failed"),
        ),
        (False, False, "setup", TargetError("login refused"), (Status.NOT_VERIFIED, "could not set up: login refused")),
        (
            False,
            False,
            "call",
            BrokenPipeError("gone"),
            (Status.NOT_VERIFIED, "could not check: BrokenPipeError: gone"),
        ),
        (False, False, "call", pytest.fail.Exception("too slow"), (Status.FAIL, "too slow")),
        (False, False, "call", AssertionError("p95 120 ms > 100 ms"), (Status.FAIL, "p95 120 ms > 100 ms")),
    ],
)
def test_status_of_an_outcome(passed, skipped, when, error, expected):
    assert outcome.status_of(passed, skipped, when, error, "no target") == expected


def test_a_passed_check_with_a_warning_is_warn():
    evidence = Evidence()
    evidence.warn("mirror 9 days old")
    assert outcome.status_of(True, False, "call", evidence=evidence) == (Status.WARN, "mirror 9 days old")


def test_waivers_turn_a_failure_into_waived_only_while_valid():
    key = "Pre-Release Verification / Code Quality :: Code coverage >95%"
    valid = Waiver("WVR-1", "", key, "legacy module", "QA Team Lead", date(2027, 1, 1), [])
    expired = Waiver("WVR-0", "", key, "old", "QA Team Lead", date(2026, 1, 1), [])
    status, reason = outcome.waived([valid], [key], "coverage 90 %", date(2026, 11, 25))
    assert status == Status.WAIVED and reason.startswith("waived by WVR-1") and reason.endswith("coverage 90 %")
    assert outcome.waived([expired], [key], "coverage 90 %", date(2026, 11, 25)) == (
        Status.FAIL,
        "coverage 90 % (waiver WVR-0: expired on 2026-01-01)",
    )
    assert outcome.waived([valid], ["another item"], "x", date(2026, 11, 25)) == (Status.FAIL, "x")


def test_a_waiver_expiring_at_a_time_is_not_a_date(tmp_path):
    """TOML reads 2027-01-31T10:00:00 as a datetime, which cannot be compared with today's date."""
    path = tmp_path / "waivers.toml"
    text = '[[waiver]]\nid = "W"\nfinding = "X"\nreason = "r"\napprover = "QA Team Lead"\nexpires = {}\n'
    for expires, problems in (("2027-01-31", ["not signed by its approver"]), ("2027-01-31T10:00:00", [NOT_A_DATE])):
        path.write_text(text.format(expires))
        assert waivers.load(path, {"QA Team Lead": []}, None, "svc")[0].problems == problems


def test_phase_vocabulary():
    assert phases.run_label("post_deploy and not rollback") == "post_deploy-and-not-rollback"
    assert phases.run_label("") == "all"
    assert phases.run_phases("pre_release") == {"pre_release", *phases.PRE_RELEASE_PARTS}
    assert phases.run_phases("monitoring") == {"monitoring"}
    assert phases.is_due({"post_deploy"}, {"monitoring"}) and not phases.is_due({"monitoring"}, {"post_deploy"})
    phases_of = {"test_cpu": {"monitoring"}, "test_scan": {"security", "pre_release"}}
    assert phases.observes(["test_cpu", "test_scan"], phases_of, {"monitoring"})
    assert not phases.observes(["test_scan"], phases_of, {"monitoring"})
    assert phases.observes(["test_unknown"], phases_of, {"monitoring"})


def trigger(
    text: str, status: Status, fired_by: str = "", before: str = "pass", marked: str = ""
) -> results.ItemResult:
    """A trigger check's result as the run records it: the findings as data beside the shown table."""
    finding = triggers.Finding(fired_by, "fail", "HTTP 500", "this run", before, marked)
    if fired_by and before == "fail" and not marked:
        finding.pre_existing = "fails in 3.12 too"
    findings = [asdict(finding)] if fired_by else []
    check = results.CheckResult(
        f"checks/test_rollback_triggers.py::test_rollback_trigger[{text}]",
        status,
        f"fired: {fired_by} fail" if fired_by else "",
        0.1,
        ["post_deploy"],
        [{"kind": "table", "title": "any title", "rows": [], "data": findings}],
    )
    return results.ItemResult(Item("Rollback Procedure / Rollback Triggers", text, "trigger"), status, [check])


def test_the_trigger_decision_is_data():
    decided = results.decision(
        [
            trigger("Critical service failure", Status.FAIL, "test_health_checks[post_deploy]"),
            trigger("Compliance violations", Status.PASS),
        ]
    )
    assert decided["name"] == "ROLLBACK"
    assert decided["fired"] == [
        {
            "trigger": "Critical service failure",
            "checks": ["test_health_checks[post_deploy]"],
            "reason": "fired: test_health_checks[post_deploy] fail",
            "pre_existing": False,
        }
    ]
    shared = results.decision([trigger("Critical service failure", Status.FAIL, "test_health_checks", before="fail")])
    assert shared["name"] == "BLOCKED" and shared["fired"][0]["pre_existing"]
    assert shared["reasons"][0].startswith("pre-existing failure, rolling back would not fix it: Critical service")
    marked = trigger("Security vulnerabilities", Status.FAIL, "test_security_scan", marked="present in 3.12: …")
    assert results.decision([marked])["name"] == "BLOCKED"
    assert results.decision([trigger("Compliance violations", Status.NOT_VERIFIED)])["name"] == "BLOCKED"
    assert results.decision([trigger("Compliance violations", Status.PASS)])["name"] == "PROCEED"
    assert results.decision([]) is None


def test_the_plugin_collects_the_checklist_from_any_directory(pytester):
    """A checklist run is recognised by its path; phase sub-markers imply pre_release; nothing starts on
    --collect-only."""
    result = pytester.runpytest_subprocess(
        str(CHECKS_DIR),
        "--relcheck-config",
        str(DEFAULT_CONFIG),
        "-m",
        "pre_release",
        "--collect-only",
        "-q",
        "-p",
        "no:randomly",
    )
    assert result.ret == 0, result.stdout.str()[-2000:]
    collected = [line for line in result.outlines if "::test_" in line]
    assert len(collected) == 26 and all(
        line.startswith(str(CHECKS_DIR.relative_to(CHECKS_DIR.parent.parent))) or "checks/" in line
        for line in collected
    )


def config_in(tmp_path):
    from conftest import default_config_data
    from relcheck.core.config import load
    from relcheck.run.runner import merge, write_config

    data = merge(default_config_data(), {"reports": str(tmp_path / "reports")})
    return load(write_config(data, tmp_path / "relcheck.toml"))


def test_the_status_report_states_each_phase_from_its_last_complete_run(tmp_path):
    from relcheck.core import records
    from relcheck.core.files import write_json
    from relcheck.run import postrelease

    cfg = config_in(tmp_path)

    def manifest(directory: str, label: str, verdict: str, finished: str, partial: list[str]) -> None:
        run = {"label": label, "finished": finished, "partial": partial, "interrupted": False}
        write_json(
            records.release_dir(cfg) / directory / "manifest.json",
            {"run": run, "verdict": verdict, "counts": {"pass": 3}, "items": []},
        )

    manifest("pre_release", "pre_release", "READY", "2026-11-25T10:00:00", [])
    manifest("pre_release-partial", "pre_release", "PARTIAL", "2026-11-25T11:00:00", ["partial run: -k"])
    manifest("post_deploy", "post_deploy", "PROCEED", "2026-11-25T12:00:00", [])
    report = postrelease.status_report(cfg)
    assert report.verdicts == {"pre_release": "READY", "pre_deploy": None, "post_deploy": "PROCEED"}
    assert "| pre_deploy | - | no complete run |" in report.text and "PARTIAL" not in report.text


def test_deployment_notes_name_the_step_a_deploy_stopped_at(tmp_path):
    from dataclasses import asdict

    from relcheck.ops.deploy import CommandRun, Record, StepResult
    from relcheck.run import postrelease

    stopped = Record("deploy", "p", "1.1.0", "v1.1.0", "t0", "t2", False, "Run migrations")
    failed = [CommandRun("alembic upgrade head", 1, "b" * 64)]
    stopped.steps = [
        StepResult("Run migrations", "alembic", 1.0, False, "migrate failed (exit 1): boom", "t0", "t1", failed)
    ]
    notes = postrelease.deployment_notes(config_in(tmp_path), asdict(stopped))
    assert notes.problems == ["step Run migrations failed: migrate failed (exit 1): boom"]
    assert "| Run migrations | t0 | t1 | 1 | bbbbbbbbbbbbbbbb | FAILED: migrate failed (exit 1): boom |" in notes.text
    stopped.steps, stopped.failed_step = [], ""
    assert postrelease.deployment_notes(config_in(tmp_path), asdict(stopped)).problems == [
        "the deploy stopped early (no step completed)"
    ]


def test_a_trigger_with_a_due_check_that_has_no_result_is_not_evaluated():
    judged = triggers.evaluate(["test_a", "test_b"], ["test_a"], {}, [], [])
    assert [f.status for f in judged.findings] == ["no result"] and judged.not_evaluated and not judged.fired
    assert judged.not_due == ["test_b"]


def test_a_failure_the_previous_release_shares_is_pre_existing():
    previous = [
        {
            "run": {"label": "post_deploy", "finished": "x"},
            "items": [{"checks": [{"test": "c::t", "status": "fail", "reason": ""}]}],
        }
    ]
    judged = triggers.evaluate(["t"], ["t"], {"t": {"status": "fail", "reason": "HTTP 500"}}, [], previous, "3.12")
    assert judged.fired[0].pre_existing == "fails in 3.12 too"


def test_partial_runs_feed_no_decision(tmp_path):
    from relcheck.core import records

    for label, partial in (("post_deploy", []), ("post_deploy-partial", ["narrowed by -k"])):
        (tmp_path / label).mkdir()
        run = {"label": label, "finished": label, "partial": partial}
        (tmp_path / label / "manifest.json").write_text(json.dumps({"run": run, "items": []}))
    assert [m["run"]["label"] for m in records.manifests_in(tmp_path)] == ["post_deploy"]


def test_a_check_is_pre_existing_only_when_none_of_its_comparisons_introduced_anything():
    evidence = Evidence()
    evidence.change("bandit", "1.0.0", [], ["B602 app.py"], [])
    assert evidence.pre_existing == "present in 1.0.0: rolling back would not fix it"
    evidence.change("audit", "1.0.0", [], [], [])
    assert evidence.pre_existing  # nothing new in the second comparison keeps the mark
    evidence.change("docs", "1.0.0", ["TODO in README.md"], [], [])
    assert not evidence.pre_existing
    evidence.change("more", "1.0.0", [], ["x"], [])
    assert not evidence.pre_existing  # once something was introduced, the failure is this release's
