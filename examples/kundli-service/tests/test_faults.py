"""Fault switches break exactly one thing each, and only in test mode."""

import logging
import time

import pytest

from conftest import BIRTH, logged
from kundli.faults import Faults
from kundli.settings import Settings, SettingsError


def test_faults_are_ignored_outside_test_mode():
    settings = Settings.from_env({"KUNDLI_DATABASE_URL": "postgresql:///x", "KUNDLI_FAULTS": '{"unhealthy": true}'})
    assert settings.faults == {}


def test_unknown_fault_is_rejected():
    with pytest.raises(SettingsError, match="unknown fault"):
        Faults({"make_it_fast": True})


def test_error_rate_is_spread_evenly():
    faults = Faults({"error_rate": 0.25})
    assert sum(faults.should_error() for _ in range(400)) == 100
    assert not Faults({}).should_error()


def test_broken_contract_fails_calculations_and_counts_violations(make_client, tokens):
    client = make_client(broken_contract=0.5)
    births = [{**BIRTH, "latitude": 10 + n} for n in range(4)]
    answers = [client.post("/v1/kundli", json={"name": "c", "birth": b}, headers=tokens["operator"]) for b in births]
    assert [a.status_code for a in answers] == [201, 500, 201, 500]
    assert answers[1].json()["error"]["code"] == "CONTRACT_VIOLATION"
    text = client.get("/metrics").text
    assert 'kundli_calculations_total{result="failed"} 2.0' in text and "kundli_contract_violations_total 2.0" in text


def test_unhealthy_wrong_version_and_missing_metric(make_client):
    client = make_client(unhealthy=True, wrong_version=True, missing_metric="kundli_cache_hits")
    assert client.get("/health").status_code == 503
    assert client.get("/version").json()["version"] == "0.0.0-wrong"
    text = client.get("/metrics").text
    assert "kundli_cache_hits" not in text and "kundli_cache_misses_total" in text


def test_uncounted_health_leaves_infrastructure_out_of_the_request_counter(make_client, tokens):
    client = make_client(uncounted_health=True)
    client.get("/health")
    client.get("/version", headers=tokens["viewer"])
    text = client.get("/metrics").text
    counted = [line for line in text.splitlines() if line.startswith("kundli_http_requests_total{")]
    assert any('route="/version"' in line for line in counted)
    assert not any('route="/health"' in line or 'route="/metrics"' in line for line in counted)


def test_no_security_headers_and_leaked_secret(make_client, tokens, caplog):
    client = make_client(no_security_headers=True, leak_secret=True)
    caplog.set_level("INFO", logger="kundli.http")
    response = client.get("/version", headers=tokens["viewer"])
    assert "x-content-type-options" not in response.headers
    assert response.headers["x-debug-authorization"] == tokens["viewer"]["Authorization"]
    assert logged(caplog, tokens["viewer"]["Authorization"])


def test_admin_open_to_viewers(make_client, tokens):
    client = make_client(admin_open_to_viewers=True)
    assert client.get("/v1/admin/audit", headers=tokens["viewer"]).status_code == 200


def test_no_audit(make_client, tokens):
    client = make_client(no_audit=True)
    chart = client.post("/v1/kundli", json={"name": "Silent", "birth": BIRTH}, headers=tokens["operator"]).json()
    entries = client.get("/v1/admin/audit?limit=20", headers=tokens["admin"]).json()
    assert str(chart["id"]) not in {e["object_id"] for e in entries if e["action"] == "chart.create"}


def test_latency_on_one_route(make_client):
    client = make_client(latency={"route": "GET /version", "ms": 60})
    started = time.perf_counter()
    client.get("/version")
    assert time.perf_counter() - started >= 0.06


def test_error_rate_answers_500_but_not_on_health(make_client, tokens):
    client = make_client(error_rate=1.0)
    assert client.get("/health").status_code == 200
    assert client.get("/version").json()["error"]["code"] == "INTERNAL_ERROR"


def test_broken_read_alone(make_client, tokens, chart):
    client = make_client(broken_read=True)
    assert client.get(f"/v1/kundli/{chart['id']}", headers=tokens["viewer"]).status_code == 500


def test_api_contract_faults(make_client, tokens):
    client = make_client(off_schema_version=True, audit_limit_500=True, open_audit=True)
    assert client.get("/version").json()["version"] == 110
    assert client.get("/v1/admin/audit?limit=5").status_code == 200
    assert client.get("/v1/admin/audit?limit=500", headers=tokens["admin"]).status_code == 500
    assert client.get("/v1/admin/audit?limit=499", headers=tokens["admin"]).status_code == 200


def test_capacity_cpu_burn_and_memory(make_client, tokens):
    client = make_client(capacity={"concurrency": 1, "service_ms": 20}, cpu_burn_ms=5, memory_hog_mb=1)
    started = time.perf_counter()
    assert client.get("/version").status_code == 200
    assert time.perf_counter() - started >= 0.025
    assert len(client.app.state.service.ballast) == 2**20


def test_log_errors(make_client, caplog):
    client = make_client(log_errors=True)
    caplog.set_level("INFO")
    client.get("/version")
    [error] = logged(caplog, "request failed")
    assert error.levelno == logging.ERROR and error.exc_info


def test_plaintext_tokens(make_client, settings, database_url):
    import psycopg

    from kundli import manage
    plain = Settings(**{**settings.__dict__, "faults": {"plaintext_tokens": True}})
    token = manage.create_user(plain, f"plain-{time.time_ns()}", "viewer", None)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT 1 FROM api_tokens WHERE token_hash = %s", (token,)).fetchone()
    client = make_client(plaintext_tokens=True)
    assert client.get("/v1/admin/audit", headers={"Authorization": f"Bearer {token}"}).status_code == 403
