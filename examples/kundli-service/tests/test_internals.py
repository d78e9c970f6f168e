"""Failure paths that are hard to reach through normal traffic."""

import logging
from datetime import datetime, timezone

from conftest import BIRTH, logged
from kundli import astro, logconf
from kundli.auth import TokenCache
from kundli.settings import Settings


def test_broken_calculation_is_a_contract_violation(client, tokens, monkeypatch):
    good = astro.calculate

    def broken(*args):
        chart = good(*args)
        return astro.Chart(chart.moment, chart.latitude, chart.longitude, chart.ayanamsa, 400.0, chart.positions)

    monkeypatch.setattr(astro, "calculate", broken)
    response = client.post("/v1/kundli", json={"name": "Broken", "birth": {**BIRTH, "longitude": 1.5}},
                           headers=tokens["operator"])
    assert response.status_code == 500 and response.json()["error"]["code"] == "CONTRACT_VIOLATION"


def test_failed_job_is_logged_and_missing_chart_is_skipped(client, caplog):
    svc = client.app.state.service
    caplog.set_level("ERROR")

    async def explode(chart_id, actor):
        raise RuntimeError("boom")

    client.portal.call(svc.recalculate, 10**9, "tester")          # chart gone: nothing to do
    svc.recalculate = explode
    client.portal.call(svc.jobs.put, (1, "tester"))
    assert logged(caplog, "recalculation failed chart_id=1")


def test_health_when_the_database_is_unreachable(settings):
    from fastapi.testclient import TestClient

    from kundli.app import create_app
    unreachable = Settings(**{**settings.__dict__, "database_url": "postgresql://x@/db?host=/nonexistent&connect_timeout=1"})
    with TestClient(create_app(unreachable)) as client:
        response = client.get("/health")
    assert response.status_code == 503 and response.json()["database"].startswith("unreachable")


def test_database_outage_during_a_request_is_503(settings, tokens):
    from fastapi.testclient import TestClient

    from kundli.app import create_app
    down = Settings(**{**settings.__dict__, "database_url": "postgresql://x@/db?host=/nonexistent&connect_timeout=1"})
    with TestClient(create_app(down)) as client:
        client.app.state.service.db.pool.timeout = 0.5
        response = client.get("/v1/kundli/1", headers=tokens["viewer"])
    assert response.status_code == 503 and response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"


def test_token_cache_expires_and_stays_bounded(monkeypatch):
    cache = TokenCache(ttl_seconds=10)
    cache.put("k", {"id": 1})
    assert cache.get("k") == {"id": 1}
    monkeypatch.setattr("kundli.auth.time.monotonic", lambda: 10**9)
    assert cache.get("k") is None
    for i in range(10_002):
        cache.put(str(i), {})
    assert len(cache._entries) < 10_002
    TokenCache(ttl_seconds=0).put("x", {})


def test_log_configuration_writes_utc_lines(tmp_path):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logconf.configure(str(tmp_path / "service.log"), "INFO")
        logging.getLogger("kundli.test").info("hello")
        logconf.configure(None, "WARNING")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    line = (tmp_path / "service.log").read_text()
    assert line.endswith("Z INFO kundli.test hello\n") and line.startswith(str(datetime.now(timezone.utc).year))


def test_main_runs_uvicorn_with_hardened_options(monkeypatch, settings):
    import kundli.__main__ as entry
    seen = {}
    monkeypatch.setenv("KUNDLI_DATABASE_URL", settings.database_url)
    monkeypatch.setattr(entry.uvicorn, "run", lambda app, **options: seen.update(options))
    monkeypatch.setattr(entry, "configure", lambda *args: None)
    assert entry.main(["--port", "8123"]) == 0
    assert seen["port"] == 8123 and seen["server_header"] is False and seen["access_log"] is False
    monkeypatch.setenv("KUNDLI_TEST_MODE", "1")
    monkeypatch.setenv("KUNDLI_FAULTS", '{"unknown_switch": 1}')
    assert entry.main([]) == 2
