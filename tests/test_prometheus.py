"""Monitoring through a real Prometheus (Debian's prometheus and prometheus-node-exporter packages, installed by
.ci/run and the README's test command): started here on loopback ports with a generated config that scrapes the
embedded services (added as they start, through a file_sd target file) and node_exporter every second."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from conftest import LATENCY_FAULT_MS, installed
from relcheck.target import prometheus_server
from relcheck.target.prometheus_server import LocalPrometheus
from relcheck.target.service import free_port

MONITORED = "cpu_usage or memory_usage or error_rates or response_times or resource_usage"


def binaries() -> None:
    for names in (prometheus_server.PROMETHEUS, prometheus_server.NODE_EXPORTER):
        installed(prometheus_server.which(names), names[0], "RELCHECK_REQUIRE_PROMETHEUS")


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory):
    binaries()
    server = LocalPrometheus.start(tmp_path_factory.mktemp("prometheus"))
    try:
        server.wait_for('up{job="node"} == 1')
        yield server
    finally:
        server.stop()


def watch(prometheus: LocalPrometheus, target, name: str) -> str:
    """Scrape the target as service=name (once scraped); its selector."""
    return prometheus.watch(urlsplit(target.base_url).netloc, name)


def through(prometheus: LocalPrometheus, selector: str, **source) -> dict:
    return {
        "monitoring": {
            "source": {"kind": "prometheus", "url": prometheus.url, "service_selector": selector, "window": "1m"}
            | source
        }
    }


def traffic(target, requests_count: int = 30) -> None:
    for n in range(requests_count):
        target.http.get(f"/v1/kundli/{n % 5 + 1}", role="viewer")


def test_prometheus_monitoring_passes_on_the_healthy_service_and_shows_its_queries(bench, healthy, prometheus):
    selector = watch(prometheus, healthy, "healthy")
    traffic(healthy)
    time.sleep(3)  # a few scrapes after the traffic
    changes = through(prometheus, selector)
    changes["monitoring"]["min_rps"] = 0.05  # 30 requests in the 1 m window
    selection = ("-m", "monitoring or post_release", "-k", f"{MONITORED} or network")
    checked = bench.run(bench.config(changes, target=healthy), *selection)
    for check in (
        "test_cpu_usage[monitoring]",
        "test_memory_usage[monitoring]",
        "test_check_resource_usage",
        "test_network_traffic[monitoring]",
        "test_error_rates[monitoring: Error rates normal]",
        "test_response_times[monitoring: Response times]",
    ):
        assert checked.status(check) == "pass", (check, checked.reason(check))
    rate = checked.facts("test_network_traffic[monitoring]", "Traffic")["measured"]
    assert rate.startswith('sum(rate(kundli_http_requests_total{service="healthy"}[1m]))')
    measured = checked.facts("test_cpu_usage[monitoring]", "Service process")["measured"]
    assert measured.startswith('100 * sum(rate(process_cpu_seconds_total{service="healthy"}[1m]))')
    assert f"(Prometheus {prometheus.url}, {urlsplit(healthy.base_url).netloc})" in measured


def test_prometheus_monitoring_fails_on_cpu_memory_errors_and_latency(bench, faulty, prometheus):
    target = faulty(
        latency={"route": "GET /v1/kundli/{chart_id}", "ms": LATENCY_FAULT_MS},
        error_rate=0.3,
        memory_hog_mb=450,
        cpu_burn_ms=500,
    )
    selector = watch(prometheus, target, "faulty")
    traffic(target, 12)  # 12 x 500 ms of CPU: ~10 % of a core over the 1 m window
    time.sleep(3)
    changes = through(prometheus, selector)
    changes["monitoring"]["cpu_percent"] = 5
    checked = bench.run(bench.config(changes, target=target), "-m", "monitoring", "-k", MONITORED)
    assert checked.reason("test_cpu_usage[monitoring]").startswith("CPU ")
    assert checked.reason("test_memory_usage[monitoring]").startswith("memory ")
    assert "answered 5xx" in checked.reason("test_error_rates[monitoring: Error rates normal]")
    slow = checked.reason("test_response_times[monitoring: Response times]")  # CPU burn slows every route
    assert slow.startswith("p95 over the limit: ") and "GET /v1/kundli/{chart_id}" in slow


def test_prometheus_reads_the_hosts_disks_and_what_it_collects_after_a_deploy(bench, healthy, prometheus):
    selector = watch(prometheus, healthy, "healthy")
    traffic(healthy)
    time.sleep(3)
    host = {"host_selector": 'job="node"'}
    selection = ("-m", "monitoring or post_deploy", "-k", "disk_usage or metrics_collection")
    checked = bench.run(bench.config(through(prometheus, selector, **host), target=healthy), *selection)
    assert checked.status("test_disk_usage[monitoring]") == "pass", checked.reason("test_disk_usage[monitoring]")
    (disks,) = [b for b in checked.evidence("test_disk_usage[monitoring]") if b["title"].startswith("Disks: ")]
    assert disks["title"].startswith('Disks: 100 * node_filesystem_avail_bytes{job="node",fstype!~')
    assert checked.status("test_verify_metrics_collection") == "pass", checked.reason("test_verify_metrics_collection")
    collected = checked.evidence("test_verify_metrics_collection")[0]["title"]
    assert 'count by (__name__) ({service="healthy"})' in collected
    broken = through(prometheus, selector, **host)
    broken["monitoring"]["min_free_disk_percent"] = 100
    broken["deploy"] = {"required_metrics": ["kundli_http_requests_total", "no_such_family_total"]}
    checked = bench.run(bench.config(broken, target=healthy), *selection)
    assert checked.reason("test_disk_usage[monitoring]").startswith("below 100 % free: ")
    assert checked.reason("test_verify_metrics_collection") == "metric families missing: no_such_family_total"
    nowhere = through(prometheus, selector, host_selector='job="nowhere"')
    checked = bench.run(bench.config(nowhere, target=healthy), "-m", "monitoring", "-k", "disk_usage")
    assert checked.status("test_disk_usage[monitoring]") == "not verified"


def test_prometheus_down_unreachable_or_without_series_is_not_verified(bench, healthy, prometheus):
    selector = watch(prometheus, healthy, "healthy")
    cases = {
        "nowhere": through(prometheus, selector, url=f"http://127.0.0.1:{free_port()}"),
        "no series": through(prometheus, 'service="never-scraped"'),
        "missing family": through(
            prometheus, selector, queries={"cpu_percent": "100 * sum(rate(no_such_family{{{service}}}[{window}]))"}
        ),
    }
    reasons = {}
    for name, changes in cases.items():
        checked = bench.run(bench.config(changes, target=healthy), "-m", "monitoring", "-k", "cpu_usage")
        assert checked.status("test_cpu_usage[monitoring]") == "not verified", name
        reasons[name] = checked.reason("test_cpu_usage[monitoring]")
    assert reasons["nowhere"].startswith("Prometheus at http://127.0.0.1:") and "is unreachable" in reasons["nowhere"]
    assert reasons["no series"] == 'no data: Prometheus has no series for up{service="never-scraped"}'
    assert reasons["missing family"].startswith("no data: Prometheus has no series for 100 * sum(rate(no_such_family")


def steady_traffic(targets, seconds: float) -> None:
    """Requests to every target, side by side, for a while (the window the canary compares)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for target in targets:
            target.http.get("/v1/kundli/1", role="viewer")
        time.sleep(0.05)


def test_prometheus_canary_compares_the_new_release_with_the_previous_one(bench, healthy, faulty, prometheus):
    # slower by far more than a busy machine's jitter: the detection must not hinge on a quiet CI host
    slow, erring = faulty(latency={"route": "GET /v1/kundli/{chart_id}", "ms": 300}), faulty(error_rate=0.3)
    old, new, worse = (
        watch(prometheus, t, name) for t, name in ((healthy, "healthy"), (slow, "slow"), (erring, "erring"))
    )
    canary = {"window": "20s", "step_s": 2}
    check = ("-m", "monitoring", "-k", "response_times or error_rates")
    steady_traffic([healthy, slow], 12)  # each comparison right after its own traffic, inside its 20 s window
    slower = through(prometheus, new, baseline_selector=old, **canary)
    slower["monitoring"]["p95_ms"] = 1000  # within the absolute limit: the comparison with the old release decides
    changed = bench.run(bench.config(slower, target=slow), *check)
    assert changed.reason("test_response_times[monitoring: Response times]").startswith(
        "slower than the previous release: p95 x"
    )
    facts = changed.facts(
        "test_response_times[monitoring: Response times]",
        "New release vs previous release (p95 latency over the window)",
    )
    assert facts["previous"].startswith("1000 * histogram_quantile(0.95, sum by (le) (rate(")
    steady_traffic([healthy, erring], 8)
    tolerant = through(prometheus, worse, baseline_selector=old, **canary)
    tolerant["monitoring"] |= {"error_budget": 0.4, "route_error_budget": 1.0}  # within limits, worse than before
    errors = bench.run(bench.config(tolerant, target=erring), *check)
    assert errors.reason("test_error_rates[monitoring: Error rates]").startswith("more 5xx than the previous release")
    same = bench.run(bench.config(through(prometheus, old, baseline_selector=old, **canary), target=healthy), *check)
    assert same.status("test_error_rates[monitoring: Error rates]") == "pass"
    latency = "test_response_times[monitoring: Response times]"  # never a false alarm; too noisy on a busy machine
    assert same.status(latency) == "pass" or same.reason(latency).startswith("too noisy to compare"), same.reason(
        latency
    )


def test_prometheus_watches_the_embedded_default_and_its_monitoring_report_shows_the_queries(bench):
    """The embedded target starts its own Prometheus and node_exporter for a monitoring run (embedded.prometheus)."""
    binaries()
    checked = bench.run(bench.config(), "-m", "monitoring")
    print(f"pytest -m monitoring on the embedded target through Prometheus: {checked.seconds:.1f} s")
    decision = checked.manifest["decision"]
    assert not decision["fired"], checked.output[-3000:]
    # alone, without the release's post-deploy and pre-deploy runs: the triggers that read them are not evaluated
    assert decision["not_evaluated"] and all("no complete run yet" in u["reason"] for u in decision["not_evaluated"])
    monitored = [s for t, (s, _) in checked.statuses().items() if not t.startswith("test_rollback_trigger")]
    assert "fail" not in monitored and "not verified" not in monitored, checked.statuses()
    measured = checked.facts("test_cpu_usage[monitoring]", "Service process")["measured"]
    assert measured.startswith('100 * sum(rate(process_cpu_seconds_total{service="embedded"}[')
    assert checked.manifest["run"]["target"]["prometheus"].endswith('(service="embedded")')
    report = (checked.run_dir / "report.html").read_text()
    assert "process_cpu_seconds_total{service=&quot;embedded&quot;}" in report
