import time

import pytest

from conftest import BIRTH, logged
from kundli import __version__


def error_code(response):
    return response.json()["error"]["code"]


def test_health_reports_database_and_schema(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["schema_revision"] == body["schema_head"]


def test_version(client):
    assert client.get("/version").json() == {"service": "kundli-service", "version": __version__}


def test_security_headers_and_no_server_banner(client):
    headers = client.get("/version").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in headers          # plain http
    assert "server" not in headers and "x-powered-by" not in headers


def test_hsts_on_https(client):
    assert "max-age=" in client.get("https://testserver/version").headers["strict-transport-security"]


def test_create_read_and_delete_chart(client, tokens, chart):
    assert chart["ascendant"]["sign"] in ("Virgo", "Libra")
    assert [p["planet"] for p in chart["planets"]][:2] == ["Sun", "Moon"]
    read = client.get(f"/v1/kundli/{chart['id']}", headers=tokens["viewer"])
    assert read.status_code == 200 and read.json()["planets"] == chart["planets"]
    assert client.delete(f"/v1/kundli/{chart['id']}", headers=tokens["operator"]).status_code == 403
    assert client.delete(f"/v1/kundli/{chart['id']}", headers=tokens["admin"]).status_code == 204
    assert error_code(client.get(f"/v1/kundli/{chart['id']}", headers=tokens["viewer"])) == "CHART_NOT_FOUND"
    assert error_code(client.delete(f"/v1/kundli/{chart['id']}", headers=tokens["admin"])) == "CHART_NOT_FOUND"


def test_second_identical_calculation_hits_the_cache(client, tokens):
    body = {"name": "Twin", "birth": {**BIRTH, "latitude": 12.97}}
    for _ in range(2):
        assert client.post("/v1/kundli", json=body, headers=tokens["operator"]).status_code == 201
    assert "kundli_cache_hits_total 1.0" in client.get("/metrics").text


@pytest.mark.parametrize("birth, code", [
    ({**BIRTH, "latitude": 91}, "VALIDATION_FAILED"),
    ({**BIRTH, "datetime": "1990-08-15T10:00:00"}, "VALIDATION_FAILED"),
    ({**BIRTH, "datetime": "1700-01-01T00:00:00+00:00"}, "DATE_OUT_OF_RANGE"),
    ({**BIRTH, "latitude": 70.0}, "POLAR_LATITUDE"),
    ({**BIRTH, "latitude": True}, "VALIDATION_FAILED"),  # documented as a number: no boolean read as 1.0
    ({**BIRTH, "datetime": 0}, "VALIDATION_FAILED"),  # documented as a date-time string: no epoch number
])
def test_invalid_birth_data_is_rejected(client, tokens, birth, code):
    response = client.post("/v1/kundli", json={"name": "X", "birth": birth}, headers=tokens["operator"])
    assert response.status_code == 422 and error_code(response) == code


def test_unknown_fields_are_rejected(client, tokens):
    response = client.post("/v1/kundli", json={"name": "X", "birth": BIRTH, "admin": True},
                           headers=tokens["operator"])
    assert error_code(response) == "VALIDATION_FAILED" and "admin" in response.json()["error"]["message"]


def test_authentication_and_roles(client, tokens, chart):
    assert error_code(client.get(f"/v1/kundli/{chart['id']}")) == "UNAUTHENTICATED"
    bad = {"Authorization": "Bearer kst_not-a-token"}
    assert error_code(client.get(f"/v1/kundli/{chart['id']}", headers=bad)) == "UNAUTHENTICATED"
    assert error_code(client.post("/v1/kundli", json={"name": "X", "birth": BIRTH},
                                  headers=tokens["viewer"])) == "FORBIDDEN"
    assert client.get("/v1/admin/audit", headers=tokens["operator"]).status_code == 403
    assert client.get("/v1/admin/audit", headers=tokens["admin"]).status_code == 200


def test_api_version_header_is_a_contract(client, tokens, chart):
    ok = client.get(f"/v1/kundli/{chart['id']}", headers={**tokens["viewer"], "X-API-Version": "1"})
    assert ok.status_code == 200
    wrong = client.get(f"/v1/kundli/{chart['id']}", headers={**tokens["viewer"], "X-API-Version": "2"})
    assert error_code(wrong) == "UNSUPPORTED_API_VERSION"
    assert "kundli_contract_violations_total 1.0" in client.get("/metrics").text


def test_unknown_route_and_method(client):
    assert error_code(client.get("/v1/nothing-here")) == "NOT_FOUND"
    assert error_code(client.put("/version")) == "METHOD_NOT_ALLOWED"


def test_yogas_and_compatibility(client, tokens, chart):
    yogas = client.get(f"/v1/kundli/{chart['id']}/yogas", headers=tokens["viewer"]).json()
    assert yogas["chart_id"] == chart["id"] and "Mangal Dosha" in {y["name"] for y in yogas["yogas"]}
    other = client.post("/v1/kundli", json={"name": "B", "birth": {**BIRTH, "datetime": "1992-01-03T06:00:00Z"}},
                        headers=tokens["operator"]).json()
    result = client.post("/v1/compatibility", json={"chart_a": chart["id"], "chart_b": other["id"]},
                         headers=tokens["viewer"]).json()
    assert 0 <= result["score"] <= 1 and result["max_points"] == 23
    missing = client.post("/v1/compatibility", json={"chart_a": chart["id"], "chart_b": 10**9},
                          headers=tokens["viewer"])
    assert error_code(missing) == "CHART_NOT_FOUND"


def test_recalculation_job_runs_and_is_audited(client, tokens, chart):
    response = client.post(f"/v1/kundli/{chart['id']}/recalculate", headers=tokens["operator"])
    assert response.status_code == 202 and response.json()["job"] == "recalculate"
    for _ in range(100):
        actions = [(e["action"], e["object_id"]) for e in client.get("/v1/admin/audit", headers=tokens["admin"]).json()]
        if ("chart.recalculate", str(chart["id"])) in actions:
            break
        time.sleep(0.02)
    assert ("chart.recalculate", str(chart["id"])) in actions
    missing = client.post("/v1/kundli/999999999/recalculate", headers=tokens["operator"])
    assert error_code(missing) == "CHART_NOT_FOUND"


def test_state_changes_are_audited_with_actor(client, tokens, chart):
    entries = client.get("/v1/admin/audit?limit=5", headers=tokens["admin"]).json()
    create = next(e for e in entries if e["action"] == "chart.create" and e["object_id"] == str(chart["id"]))
    assert create["actor"].startswith("operator") and create["object_type"] == "chart"


def test_admin_creates_users_and_users_log_in(client, tokens):
    body = {"username": f"analyst-{time.time_ns()}", "role": "viewer", "password": "correct horse battery"}
    created = client.post("/v1/admin/users", json=body, headers=tokens["admin"])
    assert created.status_code == 201 and created.json()["role"] == "viewer"
    assert error_code(client.post("/v1/admin/users", json=body, headers=tokens["admin"])) == "USERNAME_TAKEN"
    login = client.post("/v1/auth/token", json={"username": body["username"], "password": body["password"]})
    assert login.status_code == 201 and login.json()["role"] == "viewer"
    assert client.get("/v1/admin/audit", headers={"Authorization": f"Bearer {login.json()['token']}"}).status_code == 403
    wrong = client.post("/v1/auth/token", json={"username": body["username"], "password": "wrong password!"})
    assert error_code(wrong) == "INVALID_CREDENTIALS"
    nobody = client.post("/v1/auth/token", json={"username": "nobody-here", "password": "x"})
    assert error_code(nobody) == "INVALID_CREDENTIALS"


def test_metrics_exposition(client, tokens, chart):
    text = client.get("/metrics").text
    for family in ("kundli_http_requests_total", "kundli_http_request_duration_seconds_bucket",
                   "kundli_http_requests_in_flight", "kundli_db_connections_active", "kundli_cache_misses_total",
                   "kundli_job_queue_length", "kundli_calculations_total", "kundli_validations_total",
                   "process_resident_memory_bytes"):
        assert family in text
    assert 'route="/v1/kundli"' in text


def test_request_log_line(client, tokens, chart, caplog):
    caplog.set_level("INFO", logger="kundli.http")
    client.get(f"/v1/kundli/{chart['id']}", headers=tokens["viewer"])
    [record] = logged(caplog, "route=/v1/kundli/{chart_id} status=200")
    assert "user=viewer" in record.getMessage() and "Bearer" not in record.getMessage()


def test_openapi_lists_error_codes(client):
    schema = client.get("/openapi.json").json()
    assert "CHART_NOT_FOUND" in schema["components"]["schemas"]["ErrorCode"]["enum"]


def test_ayanamsa_is_chosen_per_chart(client, tokens):
    body = {"name": "Raman", "birth": BIRTH, "ayanamsa": "raman"}
    raman = client.post("/v1/kundli", json=body, headers=tokens["operator"]).json()
    lahiri = client.post("/v1/kundli", json={**body, "ayanamsa": None}, headers=tokens["operator"]).json()
    assert raman["ayanamsa"] == "raman" and lahiri["ayanamsa"] == "lahiri"
    assert raman["planets"][0]["longitude"] > lahiri["planets"][0]["longitude"]
    bad = client.post("/v1/kundli", json={**body, "ayanamsa": "tropical"}, headers=tokens["operator"])
    assert error_code(bad) == "VALIDATION_FAILED"


def test_compatibility_reports_are_stored_and_audited(client, tokens, chart):
    body = {"chart_a": chart["id"], "chart_b": chart["id"]}
    assert client.post("/v1/compatibility/reports", json=body, headers=tokens["viewer"]).status_code == 403
    created = client.post("/v1/compatibility/reports", json=body, headers=tokens["operator"])
    assert created.status_code == 201
    report = created.json()
    read = client.get(f"/v1/compatibility/reports/{report['id']}", headers=tokens["viewer"]).json()
    assert read["score"] == report["score"] and read["kootas"] == report["kootas"]
    entries = client.get("/v1/admin/audit?limit=10", headers=tokens["admin"]).json()
    assert ("report.create", str(report["id"])) in {(e["action"], e["object_id"]) for e in entries}
    assert error_code(client.get("/v1/compatibility/reports/999999", headers=tokens["viewer"])) == "REPORT_NOT_FOUND"


def test_a_revoked_token_stops_working_at_once(client, tokens, chart):
    assert client.delete("/v1/auth/token", headers=tokens["viewer"]).status_code == 204
    assert error_code(client.get(f"/v1/kundli/{chart['id']}", headers=tokens["viewer"])) == "UNAUTHENTICATED"
    entries = client.get("/v1/admin/audit?limit=10", headers=tokens["admin"]).json()
    assert "token.revoke" in {e["action"] for e in entries}
