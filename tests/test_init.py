"""`relcheck init` writes only what it saw answer as expected: a route that answered 404/500 stays unset (its items
not verified, never a failure), every key the written config leaves unset is in the printed NOT VERIFIED list, the
required security headers are the ones on every answer, and the DSN's export line is printed without its password."""

from __future__ import annotations

import json
import re
import tomllib

from fakes import LocalServer, QuietHandler

from relcheck.core.config import load
from relcheck.discovery import init
from relcheck.discovery.writer import UNSET, not_verified, revokes
from relcheck.run import runner


class NoHealthService(LocalServer):
    """A service with no health route (/health 404), a broken metrics route (/metrics 500) and no version: nosniff
    on every answer, a CSP on its root only."""

    def __init__(self) -> None:
        class Handler(QuietHandler):
            def do_GET(self):
                headers = {"X-Content-Type-Options": "nosniff"}
                if self.path == "/":
                    headers["Content-Security-Policy"] = "default-src 'none'"
                    self.reply(200, json.dumps({"name": "items"}).encode(), "application/json", headers)
                elif self.path == "/metrics":
                    self.reply(500, b"Internal Server Error", "text/plain", headers)
                else:
                    self.reply(404, b'{"detail": "Not Found"}', "application/json", headers)

        self.url = self.serve(Handler)


def not_verified_keys(summary: str) -> list[str]:
    listed = summary.split("NOT VERIFIED until you set:\n", 1)[1].splitlines()
    return [line.removeprefix("  - ").split(":", 1)[0] for line in listed]


def empty_keys(text: str) -> list[str]:
    """The dotted keys the written config sets to an empty value."""
    keys, section = [], ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]") + "."
        elif match := re.match(r'^(\w+) = (""|\[\]|\{\})', line):
            keys.append(section + match[1])
    return keys


def test_init_writes_no_route_it_saw_fail_and_lists_every_key_it_left_unset(tmp_path):
    service = NoHealthService()
    try:
        summary = init(service.url, tmp_path / "relcheck.toml", dsn="postgresql://app:s3cret@127.0.0.1:1/appdb")
    finally:
        service.close()
    text = (tmp_path / "relcheck.toml").read_text()
    written = tomllib.loads(text)
    assert written["target"]["routes"] == {"health": "", "version": "", "metrics": "", "openapi": ""}
    assert re.search(r'^health = "" .*: /health HTTP 404', text, re.M), text
    assert re.search(r'^metrics = "" .*: /metrics HTTP 500', text, re.M), text
    listed = not_verified_keys(summary)
    assert {"target.routes.health", "target.routes.metrics", "target.routes.version", "post_deploy.since"} <= set(
        listed
    )
    assert "target.routes.health: Run health checks, Monitor system health" in summary
    assert set(empty_keys(text)) <= set(listed), set(empty_keys(text)) - set(listed)
    assert set(listed) <= set(UNSET)
    # nosniff is on every answer, the CSP on one: not service-wide, so not required, and said so
    assert written["security"]["data_protection"]["required_headers"] == {"X-Content-Type-Options": ""}
    assert "not required (not service-wide): Content-Security-Policy (1 of " in text
    assert "export RELCHECK_TARGET_DSN=postgresql://app:PASSWORD@127.0.0.1:1/appdb" in summary
    assert "s3cret" not in summary + text
    # its GET /metrics answered 500: recorded, so that what the service logged for it is relcheck's, not the release's
    assert written["post_deploy"]["init_record"] == "relcheck-init-requests.json"
    record = json.loads((tmp_path / "relcheck-init-requests.json").read_text())
    assert [(r["method"], r["route"], r["status"]) for r in record["requests"]] == [("GET", "/metrics", 500)]


def test_the_config_init_wrote_leaves_the_routes_it_saw_fail_not_verified(tmp_path):
    """Used as written, the config gives NOT VERIFIED naming the key, never a failure (nor a rollback trigger)."""
    service = NoHealthService()
    try:
        init(service.url, tmp_path / "relcheck.toml")
        checked = runner.run_checks(
            tmp_path / "relcheck.toml",
            "pre_release or post_deploy or monitoring",
            ["-p", "no:randomly", "-k", "health_checks or system_health or metrics_collection or api_documentation"],
            timeout=300,
        )
    finally:
        service.close()
    statuses = checked.statuses()
    for test in ("test_health_checks[post_deploy]", "test_monitor_system_health", "test_verify_metrics_collection"):
        assert test in statuses, checked.output[-3000:]
    assert not [test for test, (status, _) in statuses.items() if status == "fail"], statuses
    assert statuses["test_health_checks[post_deploy]"][0] == "not verified"
    assert "target.routes.health" in statuses["test_health_checks[post_deploy]"][1]
    assert statuses["test_monitor_system_health"] == statuses["test_health_checks[post_deploy]"]
    assert statuses["test_verify_metrics_collection"][0] == "not verified"
    assert "target.routes.metrics" in statuses["test_verify_metrics_collection"][1]
    assert statuses["test_api_documentation"] == (
        "not verified",
        "no OpenAPI route configured (target.routes.openapi is empty)",
    )


def test_init_writes_the_routes_the_reference_service_answers(healthy, tmp_path):
    summary = init(healthy.base_url, tmp_path / "relcheck.toml", dsn=healthy.dsn)
    written = tomllib.loads((tmp_path / "relcheck.toml").read_text())
    assert written["target"]["routes"] == {
        "health": "/health",
        "version": "/version",
        "metrics": "/metrics",
        "openapi": "/openapi.json",
    }
    listed = not_verified_keys(summary)
    assert not {key for key in listed if key.startswith("target.routes.")}, listed
    assert {"X-Content-Type-Options", "Content-Security-Policy", "Referrer-Policy"} <= set(
        written["security"]["data_protection"]["required_headers"]
    )
    assert "export RELCHECK_TARGET_DSN=" in summary
    # the conformance run's values are the service's own, never quality.api's defaults: its token-revoking
    # operation left out, nothing pinned; its documented X-API-Version named as a header one may pin
    text = (tmp_path / "relcheck.toml").read_text()
    assert written["quality"]["api"]["exclude"] == ["DELETE /v1/auth/token"]
    assert written["quality"]["api"]["parameters"] == {}
    assert (
        '# x-api-version is a documented header: if the service accepts only some values, pin one: "header.x-api-ver'
        in text
    )


def test_init_leaves_out_only_operations_that_end_the_runs_own_credentials():
    assert [
        op
        for op in ["DELETE /v1/auth/token", "POST /v1/auth/token", "DELETE /sessions/{id}", "POST /logout",
                   "DELETE /items/{id}", "DELETE /accounts/{id}", "GET /oauth/revoke-all", "DELETE /__user_data__/{p}"]
        if revokes(*op.split(" ", 1))
    ] == ["DELETE /v1/auth/token", "DELETE /sessions/{id}", "POST /logout", "GET /oauth/revoke-all"]  # fmt: skip


def test_written_load_scenarios_leave_stress_not_verified_until_its_capacity_requirement_is_set(healthy, tmp_path):
    summary = init(healthy.base_url, tmp_path / "relcheck.toml", write_load=True)
    written = tomllib.loads((tmp_path / "relcheck.toml").read_text())
    assert written["performance"]["stress"]["locustfile"] and "required_rps" not in written["performance"]["stress"]
    assert "performance.stress.required_rps" in not_verified_keys(summary)


def test_init_writes_how_the_previous_release_reads_its_database_and_lists_its_start_as_not_verified(
    healthy, scratch_source, tmp_path, monkeypatch
):
    """With migrations, the rollback plan's choice starts the previous release's code on a scratch copy: init writes
    its database variable as the migrations' (deploy.previous_env), but it does not know how the service is started,
    so deploy.previous_start is a hint and listed NOT VERIFIED (never a guessed command)."""
    summary = init(healthy.base_url, tmp_path / "relcheck.toml", source=scratch_source, dsn=healthy.dsn)
    text = (tmp_path / "relcheck.toml").read_text()
    deploy = tomllib.loads(text)["deploy"]
    assert deploy["env"] == deploy["previous_env"] == {"KUNDLI_DATABASE_URL": "{dsn}"}, deploy
    assert "previous_start" not in deploy and re.search(r"^# previous_start = .*TODO", text, re.M), text
    assert "deploy.previous_start: Prepare rollback plan (which rollback is safe" in summary
    (tmp_path / "relcheck.toml").write_text(text.replace("[deploy]\n", '[deploy]\nprevious_start = ["x"]\n'))
    monkeypatch.setenv("RELCHECK_TARGET_DSN", healthy.dsn)
    assert "deploy.previous_start" not in dict(not_verified(load(tmp_path / "relcheck.toml")))
