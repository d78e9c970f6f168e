"""Deployment Procedure / Post-Deployment: the ops smoke after a deploy."""

import pytest

pytestmark = pytest.mark.post_deploy


@pytest.mark.item("Post-Deployment", "Verify service status")
def test_service_is_running(target, evidence):
    status = target.service.status()
    answer = target.health()
    evidence.kv("Service", {"manager": status.manager, "state": status.detail, **status.facts,
                            "answers HTTP": answer.describe()})
    assert status.running, f"service is not running: {status.detail}"
    assert answer.status is not None, f"service does not answer: {answer.error}"


@pytest.mark.item("Post-Deployment", "Run health checks")
def test_health_checks(target, evidence):
    answer = target.health()
    evidence.kv("Health endpoint", {"request": answer.describe(), "time": f"{answer.elapsed_ms:.1f} ms"})
    evidence.text("Health response", answer.text)
    assert answer.status == 200, f"health check failed: {answer.describe()}"
    with target.database() as conn:
        conn.execute("SELECT 1")
    evidence.kv("Database", {"connection": "ok", "SELECT 1": "ok"})
