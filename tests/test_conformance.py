"""API conformance (Schemathesis): its events read into failures with masked reproducers, the budget and its own
errors never a pass, and the reference service's faults failing the right item (the healthy one passes in
test_pre_release_checks.py's healthy run, where the embedded target gets every method)."""

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from relcheck.core import secrets
from relcheck.core.errors import ToolError
from relcheck.probes import conformance

TOKEN = "kst_conformance-test-token-0123456789"


def plan(writes: bool = False, **changes) -> conformance.Plan:
    values = {
        "base_url": "http://127.0.0.1:9",
        "writes": writes,
        "checks": ["not_a_server_error", "ignored_auth"],
        "phases": ["coverage"],
        "max_examples": 3,
        "time_budget_s": 30,
        "seed": 0,
        "workers": 1,
        "request_timeout_s": 5,
        "auth_header": "X-Token",
        "auth_value": f"Bearer {TOKEN}",
        "exclude": ["DELETE /v1/auth/token"],
        "parameters": {"header.x-api-version": "1"},
        "allowed_hosts": ["127.0.0.1"],
    }
    return conformance.Plan(**{**values, **changes})


def scenario(
    label: str, check: str, status: str, headers: dict, body: str = "", negative_header: str = "", answer: int = 200
) -> str:
    failure = {"failure": {"title": "Server error", "message": "Received: 500\nmore"}} if status == "failure" else {}
    request = {"method": label.split()[0], "uri": "http://127.0.0.1:9/v1/x?limit=500", "headers": headers}
    if body:
        request["body"] = {"$base64": base64.b64encode(body.encode()).decode()}
    recorder = {
        "label": label,
        "checks": {"c1": [{"name": check, "status": status, **({"failure_info": failure} if failure else {})}]},
        "interactions": {"c1": {"request": request, "response": {"status_code": answer}}},
    }
    if negative_header:
        data = {"parameter": negative_header, "parameter_location": "header"}
        recorder["cases"] = {"c1": {"value": {"meta": {"phase": {"name": "coverage", "data": data}}}}}
    return json.dumps({"ScenarioFinished": {"phase": "coverage", "recorder": recorder}})


def test_events_become_failures_with_masked_reproducers_and_tried_operations():
    secrets.register(TOKEN)
    found = conformance.Conformance("scope", ["GET /v1/x", "POST /v1/x", "GET /v1/y"], [])
    lines = [
        json.dumps({"PhaseStarted": {"phase": {"name": "coverage"}}}),
        scenario("GET /v1/x", "not_a_server_error", "failure", {"X-Token": ["Bearer abc"], "Accept": ["*/*"]}),
        scenario("GET /v1/x", "not_a_server_error", "failure", {"X-Token": ["Bearer abc"]}),  # the same finding
        scenario("POST /v1/x", "ignored_auth", "success", {}, body=f'{{"note": "{TOKEN}"}}'),
        # RFC 9110 reads an empty header as none: accepting it is no breach
        scenario(
            "GET /v1/x", "negative_data_rejection", "failure", {"If-None-Match": [""]}, negative_header="If-None-Match"
        ),
        scenario(
            "GET /v1/x", "negative_data_rejection", "failure", {"If-None-Match": ["x"]}, negative_header="If-None-Match"
        ),
        '{"ScenarioFinished": {"rec',  # a run stopped mid-line
    ]
    assert conformance.read_events(found, lines, "X-Token") == "the coverage phase"
    assert found.tried == {"GET /v1/x", "POST /v1/x"} and found.cases == 5 and found.empty_headers == 1
    assert found.untried == ["GET /v1/y"]
    assert found.failures[0] == conformance.Failure(
        "GET /v1/x",
        "not_a_server_error",
        "Server error Received: 500",
        "c1",
        "curl -X GET -H 'X-Token: ***' -H 'Accept: */*' 'http://127.0.0.1:9/v1/x?limit=500'",
    )
    assert [(f.check, f.curl.split(" -H ")[1]) for f in found.failures[1:]] == [
        ("negative_data_rejection", "'If-None-Match: x' 'http://127.0.0.1:9/v1/x?limit=500'")
    ]
    assert conformance.curl(json.loads(lines[3])["ScenarioFinished"]["recorder"]["interactions"]["c1"]["request"]) == (
        "curl -X POST --data-binary '{\"note\": \"***\"}' 'http://127.0.0.1:9/v1/x?limit=500'"
    )
    assert found.incomplete == "1 operation(s) not tried: GET /v1/y" and not found.unjudged
    assert found.failures_of(conformance.ACCESS_CHECKS) == []
    assert len(found.failures_of(conformance.ACCESS_CHECKS, exclude=True)) == 2


def test_schemathesis_errors_and_nothing_tried_prove_nothing():
    found = conformance.Conformance("scope", ["GET /x"], [])
    error = {"type": "InvalidSchema", "message": "Unresolvable reference in the schema\n\nError details: ..."}
    lines = [json.dumps({"NonFatalError": {"label": "GET /x", "value": error}}), '{"EngineFinished": {}}']
    assert conformance.read_events(found, lines) == "finished"
    assert found.unjudged == "Schemathesis could not test: GET /x: InvalidSchema: Unresolvable reference in the schema"
    refused = conformance.Conformance("scope", ["GET /x", "GET /y"], [])
    conformance.read_events(refused, [scenario(f"GET /{op}", "ignored_auth", "success", {}, answer=401) for op in "xy"])
    conformance.read_events(refused, [scenario("GET /y", "ignored_auth", "success", {}, answer=404)])
    assert refused.incomplete == (
        "1 operation(s) not tried: GET /x (1 answered only 401/403: check quality.api.role's token)"
    )
    nothing = conformance.Conformance("scope", ["GET /x"], [], stopped="the time budget ran out")
    assert nothing.unjudged == "no operation was tried: the time budget ran out; not tried: GET /x"


def test_only_safe_methods_reach_a_service_relcheck_did_not_start_and_the_token_stays_off_the_command_line():
    safe, writing = plan(), plan(writes=True)
    ops = ["GET /v1/x", "POST /v1/x", "DELETE /v1/auth/token", "OPTIONS /v1/x"]
    assert [op for op in ops if safe.in_scope(op)] == ["GET /v1/x", "OPTIONS /v1/x"]
    assert [op for op in ops if writing.in_scope(op)] == ["GET /v1/x", "POST /v1/x", "OPTIONS /v1/x"]
    command = safe.command(Path("doc.json"), Path("st.toml"), Path("events"))
    assert command[command.index("--include-method-regex") + 1] == "^(GET|HEAD|OPTIONS)$"
    assert "--include-method-regex" not in writing.command(Path("doc.json"), Path("st.toml"), Path("events"))
    assert not any(TOKEN in part for part in command)
    assert safe.settings["headers"] == {"X-Token": "${RELCHECK_API_AUTH}"}
    assert safe.settings["parameters"] == {"header.x-api-version": "1"}
    assert safe.scope.startswith("safe methods only (GET, HEAD, OPTIONS)")


def test_a_host_that_is_not_allowed_gets_no_request(tmp_path):
    with pytest.raises(ToolError, match="not an allowed load target"):
        conformance.run(plan(base_url="http://192.0.2.1:80"), {}, [], tmp_path)


def test_a_run_stopped_by_its_time_budget_lists_what_it_did_not_try(tmp_path):
    document = {"openapi": "3.0.0", "info": {"title": "t", "version": "1"}, "paths": {}}
    found = conformance.run(plan(time_budget_s=0.2), document, ["GET /v1/x"], tmp_path)
    assert found.stopped.startswith("the time budget ran out (quality.api.time_budget_s = 0.2) in ")
    assert found.untried == ["GET /v1/x"] and found.unjudged.startswith("no operation was tried")


@pytest.mark.slow
def test_faults_fail_the_item_they_break_and_only_safe_methods_reach_a_service_relcheck_did_not_start(bench, faulty):
    broken = faulty(off_schema_version=True, audit_limit_500=True, open_audit=True)
    checked = bench.run(bench.config(target=broken), "-k", "api_conformance or access_controls_conformance")
    docs, access = "test_api_conformance", "test_access_controls_conformance"
    assert checked.status(docs) == "fail" and checked.status(access) == "fail"
    assert checked.reason(docs).startswith("3 conformance failure(s): ")  # in the order Schemathesis met them
    assert "GET /v1/admin/audit not_a_server_error: Server error" in checked.reason(docs)
    assert "GET /version response_schema_conformance: Response violates schema" in checked.reason(docs)
    assert checked.reason(access).startswith(
        "1 operation(s) ignore their declared auth: GET /v1/admin/audit ignored_auth: API accepts requests without "
        "authentication"
    )
    rows = next(b for b in checked.evidence(docs) if b["title"] == "Conformance failures")["rows"]
    assert {row[1] for row in rows} == {"not_a_server_error", "status_code_conformance", "response_schema_conformance"}
    server_error = next(row for row in rows if row[1] == "not_a_server_error")
    assert server_error[3] and "limit=500" in server_error[4] and "Authorization: ***" in server_error[4]
    facts = checked.facts(docs, "Conformance run (Schemathesis)")
    assert facts["scope"].startswith("safe methods only") and facts["operations in scope"] == "6"
    assert "POST /v1/kundli" in facts["left out"]


def test_no_openapi_document_is_not_verified(bench, healthy):
    config = bench.config({"target": {"routes": {"openapi": "/no-such-document"}}}, target=healthy)
    checked = bench.run(config, "-k", "api_conformance or access_controls_conformance")
    for check in ("test_api_conformance", "test_access_controls_conformance"):
        assert checked.status(check) == "not verified"
        assert checked.reason(check).startswith("the service serves no OpenAPI document")


def test_a_500_the_run_provoked_is_recorded_with_the_span_it_was_in_flight():
    answered = 1_764_800_000.25
    interaction = {
        "request": {"method": "GET", "uri": "http://127.0.0.1:9/v1/x?limit=500", "headers": {}},
        "response": {"status_code": 500, "elapsed": 0.05},
        "timestamp": answered,
    }
    ok = {**interaction, "response": {"status_code": 200, "elapsed": 0.01}}
    found = conformance.server_errors({"label": "GET /v1/x", "interactions": {"c1": interaction, "c2": ok}})
    assert [(r.method, r.route, r.status, round(r.sent, 2), r.answered) for r in found] == [
        ("GET", "/v1/x", 500, round(answered - 0.05, 2), answered)
    ]
    assert found[0].by == conformance.BY


@pytest.mark.slow
def test_errors_the_conformance_run_provoked_are_not_counted_by_the_log_check_a_real_one_is(bench, runtime):
    """A deployed service answers 500 at GET /v1/admin/audit?limit=500 and logs the error: after the pre-release
    conformance run, the post-deploy log check shows that error as the run's (its record) and passes; an error at
    another moment in the same log fails; without the run's record the provoked error fails too."""
    target = runtime.spawn({"audit_limit_500": True})
    try:
        api = {"checks": ["not_a_server_error"], "phases": ["coverage"], "max_examples": 1}
        config = bench.config({"quality": {"api": api}}, target=target)
        checked = bench.run(config, "-m", "pre_release", "-k", "test_api_conformance")
        assert "GET /v1/admin/audit not_a_server_error" in checked.reason("test_api_conformance")
        assert "ERROR" in target.log_file.read_text()  # the service logged the 500 it answered
        own = list((bench.tmp / "reports").glob("*/own-requests/conformance-*.json"))
        assert len(own) == 1 and "/v1/admin/audit" in own[0].read_text()

        checked = bench.run(config, "-m", "post_deploy", "-k", "logs_for_errors")
        logged = "test_check_logs_for_errors"
        assert checked.status(logged) == "pass", checked.reason(logged)
        facts = checked.facts(logged, "Log")
        assert int(facts["error lines caused by relcheck's own requests (not counted)"]) >= 1
        shown = next(b for b in checked.evidence(logged) if b["title"] == "Caused by relcheck's own requests")
        assert "GET /v1/admin/audit (HTTP 500, sent " in json.dumps(shown) and conformance.BY in json.dumps(shown)

        with target.log_file.open("a") as log:  # a real error, after the run
            log.write(f"{datetime.now(timezone.utc) + timedelta(seconds=2):%Y-%m-%dT%H:%M:%S.000Z} ERROR crash\n")
        checked = bench.run(config, "-m", "post_deploy", "-k", "logs_for_errors")
        assert checked.status(logged) == "fail" and checked.reason(logged).startswith("1 error line(s) in the log")

        own[0].unlink()  # no record of the run: what it provoked counts as the release's
        checked = bench.run(config, "-m", "post_deploy", "-k", "logs_for_errors")
        assert checked.status(logged) == "fail" and not checked.reason(logged).startswith("1 error line(s)")
    finally:
        target.service.stop()


def started_on_scratch(faults: dict | None = None, **changes) -> dict:
    """quality.api.start for the reference service: its own start, migrate and provision commands on {scratch_dsn}."""
    env = {"KUNDLI_DATABASE_URL": "{scratch_dsn}"}
    if faults:
        env.update({"KUNDLI_TEST_MODE": "1", "KUNDLI_FAULTS": json.dumps(faults)})
    api = {
        "start": ["{python}", "-m", "kundli", "--host", "{host}", "--port", "{port}"],
        "start_env": env,
        "start_prepare": [["{python}", "-m", "alembic", "upgrade", "head"]],
        "start_provision": ["{python}", "-m", "kundli.manage", "create-user", "--username", "api-{role}", "--role",
                            "{role}"],
        "phases": ["examples", "coverage"],
        **changes,
    }  # fmt: skip
    return {"quality": {"api": api}}


@pytest.mark.slow
def test_quality_api_start_tries_every_method_on_a_scratch_instance_of_a_remote_targets_code(bench, healthy):
    """A remote target with quality.api.start: relcheck starts the service from its tree on a scratch database,
    provisions a token there, runs every method against it and stops it; the live service gets nothing but its
    document. The same code with a fault fails; a start pointed at the live database is refused, one that never
    answers is not verified naming the key."""
    names = "api_conformance or access_controls_conformance"
    checked = bench.run(bench.config(started_on_scratch(), target=healthy), "-k", names)
    docs = "test_api_conformance"
    facts = checked.facts(docs, "Conformance run (Schemathesis)")
    assert facts["scope"].startswith("every method: the service relcheck started from target.source on scratch")
    assert "POST /v1/kundli" not in facts["left out"] and int(facts["operations in scope"]) > 6
    assert checked.status(docs) in ("pass", "warn"), checked.reason(docs)  # warn: an operation the budget missed
    assert checked.status("test_access_controls_conformance") in ("pass", "warn")

    broken = bench.run(bench.config(started_on_scratch({"audit_limit_500": True}), target=healthy), "-k", docs)
    assert broken.status(docs) == "fail" and "GET /v1/admin/audit not_a_server_error" in broken.reason(docs)

    live = started_on_scratch()
    live["quality"]["api"]["start_env"] = {"KUNDLI_DATABASE_URL": healthy.dsn}
    refused = bench.run(bench.config(live, target=healthy), "-k", docs)
    assert refused.status(docs) == "not verified"
    assert refused.reason(docs).startswith("quality.api.start: the service did not start on a scratch database: ")
    assert "quality.api.start.env.KUNDLI_DATABASE_URL" in refused.reason(docs), refused.reason(docs)

    never = started_on_scratch(start=["{python}", "-c", "raise SystemExit('no such service')"], start_timeout_s=20)
    dead = bench.run(bench.config(never, target=healthy), "-k", docs)
    assert dead.status(docs) == "not verified" and "no such service" in dead.reason(docs), dead.reason(docs)


def test_post_deploy_failures_are_judged_against_the_pre_release_runs_record():
    found = conformance.Conformance("safe", ["GET /a", "GET /b", "GET /c"], [])
    found.failures = [conformance.Failure(op, "not_a_server_error", "Server", "c1", "") for op in found.operations]
    before = {"failures": [["GET /a", "not_a_server_error"]], "tried": ["GET /a", "GET /b"], "unjudged": ""}
    judged = conformance.after_deploy(found, before, "its record")
    assert [f.operation for f in judged.known] == ["GET /a"] and [f.operation for f in judged.new] == ["GET /b"]
    assert [f.operation for f in judged.uncompared] == ["GET /c"]  # the pre-release run never tried it
    assert [row[0] for row in judged.rows()][0] == conformance.KNOWN
    nothing = conformance.after_deploy(found, None, "none: run the pre_release phase first")
    assert not nothing.new and len(nothing.uncompared) == 3 and "run the pre_release phase" in nothing.why_uncompared
    unjudged = conformance.after_deploy(found, {**before, "unjudged": "Schemathesis could not test: x"}, "r")
    assert not unjudged.new and len(unjudged.uncompared) == 3


SUBSET = {"quality": {"api": {"phases": ["examples", "coverage"], "max_examples": 1}}}
SUBSET_TITLE = "Conformance subset (Schemathesis, safe methods only)"


@pytest.mark.slow
def test_post_deploy_critical_paths_run_the_safe_subset_and_count_only_failures_new_since_the_pre_release_run(
    bench, healthy, faulty
):
    """Healthy: the safe subset is shown and the item passes. A fault switched on only in the deployed instance fails
    *Test critical paths* once the pre-release run (on the healthy one) shows it was not there; before any pre-release
    record it is not verified, never a pass. A fault in both runs is shown as known before deploy, not counted."""
    paths = "test_critical_paths"
    checked = bench.run(bench.config(SUBSET, target=healthy), "-m", "post_deploy", "-k", "critical_paths")
    assert checked.status(paths) == "pass", checked.reason(paths)
    facts = checked.facts(paths, SUBSET_TITLE)
    assert facts["scope"].startswith("safe methods only") and int(facts["operations tried"]) >= 3, facts

    deployed = faulty(off_schema_version=True)
    checked = bench.run(bench.config(SUBSET, target=deployed), "-m", "post_deploy", "-k", "critical_paths")
    assert checked.status(paths) == "not verified", checked.reason(paths)
    assert "not compared (no pre-release record (none under " in checked.reason(paths)
    before = bench.run(bench.config(SUBSET, target=healthy), "-m", "pre_release", "-k", "test_api_conformance")
    assert before.status("test_api_conformance") == "pass", before.reason("test_api_conformance")
    checked = bench.run(bench.config(SUBSET, target=deployed), "-m", "post_deploy", "-k", "critical_paths")
    assert checked.status(paths) == "fail"
    assert checked.reason(paths).startswith(
        "1 conformance failure(s) in production the pre-release run did not find: GET /version "
        "response_schema_conformance"
    ), checked.reason(paths)


@pytest.mark.slow
def test_a_conformance_failure_the_pre_release_run_found_is_known_after_the_deploy_not_counted(bench, faulty):
    paths, both = "test_critical_paths", faulty(audit_limit_500=True)
    config = bench.config(SUBSET, target=both)
    found = bench.run(config, "-m", "pre_release", "-k", "test_api_conformance")
    assert "GET /v1/admin/audit not_a_server_error" in found.reason("test_api_conformance")
    checked = bench.run(config, "-m", "post_deploy", "-k", "critical_paths")
    assert checked.status(paths) == "pass", checked.reason(paths)
    rows = next(b for b in checked.evidence(paths) if b["title"] == "Conformance subset failures")["rows"]
    assert rows and {row[0] for row in rows} == {conformance.KNOWN}, rows
    assert any(row[1] == "GET /v1/admin/audit" and row[2] == "not_a_server_error" for row in rows), rows
    assert list((bench.tmp / "reports").glob("*/own-requests/conformance-post-deploy-*.json"))  # for the log check


def test_post_deploy_subset_without_a_document_warns_and_switched_off_is_shown(bench, healthy):
    """No OpenAPI document: the subset is not verified, a warning; the configured critical paths still pass the item.
    post_deploy.conformance_budget_s = 0: not run, said so, no warning."""
    paths = "test_critical_paths"
    missing = bench.config({"target": {"routes": {"openapi": "/no-such-document"}}}, target=healthy)
    checked = bench.run(missing, "-m", "post_deploy", "-k", "critical_paths")
    assert checked.status(paths) == "warn"
    assert checked.reason(paths).startswith("the conformance subset is not verified: the service serves no OpenAPI")
    off = bench.config({"post_deploy": {"conformance_budget_s": 0}}, target=healthy)
    checked = bench.run(off, "-m", "post_deploy", "-k", "critical_paths")
    assert checked.status(paths) == "pass", checked.reason(paths)
    assert checked.facts(paths, SUBSET_TITLE) == {"not run": "switched off (post_deploy.conformance_budget_s = 0)"}
