"""Monitoring through a real Prometheus (Debian's prometheus and prometheus-node-exporter packages, installed by
.ci/run and the README's test command): started here on loopback ports with a generated config that scrapes the
embedded services (added as they start, through a file_sd target file) and node_exporter every second."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from conftest import LATENCY_FAULT_MS
from relcheck.target.service import free_port

MONITORED = "cpu_usage or memory_usage or error_rates or response_times or resource_usage"


@dataclass
class PrometheusServer:
    url: str
    targets: Path
    process: subprocess.Popen

    def watch(self, target, name: str) -> str:
        """Scrape target's metrics as service=name; wait until Prometheus has scraped it; the selector."""
        entries = json.loads(self.targets.read_text())
        entries.append({"targets": [urlsplit(target.base_url).netloc], "labels": {"service": name}})
        self.targets.write_text(json.dumps(entries))
        self.wait_for(f'up{{service="{name}"}} == 1')
        return f'service="{name}"'

    def wait_for(self, promql: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).json()
            if answer["data"]["result"]:
                return
            time.sleep(0.5)
        raise AssertionError(f"Prometheus never answered {promql}")


def binary(*names: str) -> str:
    found = next(filter(None, (shutil.which(n) for n in names)), None)
    if found:
        return found
    if os.environ.get("RELCHECK_REQUIRE_PROMETHEUS") == "1":
        pytest.fail(f"{names[0]} is required (RELCHECK_REQUIRE_PROMETHEUS=1) but not installed")
    pytest.skip(f"{names[0]} is not installed (the README's test command installs it)")


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory):
    prometheus_bin, node_bin = binary("prometheus"), binary("prometheus-node-exporter", "node_exporter")
    home = tmp_path_factory.mktemp("prometheus")
    port, node_port = free_port(), free_port()
    targets = home / "services.json"
    targets.write_text("[]")
    (home / "prometheus.yml").write_text(
        f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: services
    file_sd_configs: [{{files: ["{targets}"], refresh_interval: 1s}}]
  - job_name: node
    static_configs: [{{targets: ["127.0.0.1:{node_port}"]}}]
"""
    )
    node = subprocess.Popen([node_bin, f"--web.listen-address=127.0.0.1:{node_port}"], stderr=subprocess.DEVNULL)
    server = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stderr=subprocess.DEVNULL,
    )
    running = PrometheusServer(f"http://127.0.0.1:{port}", targets, server)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{running.url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None, "prometheus exited"
            time.sleep(0.2)
        running.wait_for('up{job="node"} == 1')
        yield running
    finally:
        for process in (server, node):
            process.terminate()
            process.wait(10)


def through(prometheus: PrometheusServer, selector: str, **source) -> dict:
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
    selector = prometheus.watch(healthy, "healthy")
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
    selector = prometheus.watch(target, "faulty")
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


def test_prometheus_down_unreachable_or_without_series_is_not_verified(bench, healthy, prometheus):
    selector = prometheus.watch(healthy, "healthy")
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
    slow = faulty(latency={"route": "GET /v1/kundli/{chart_id}", "ms": 120})
    old, new = prometheus.watch(healthy, "healthy"), prometheus.watch(slow, "slow")
    steady_traffic([healthy, slow], 12)
    canary = {"window": "20s", "step_s": 2}
    check = ("-m", "monitoring", "-k", "response_times")
    same = bench.run(bench.config(through(prometheus, old, baseline_selector=old, **canary), target=healthy), *check)
    assert same.status("test_response_times[monitoring: Response times]") == "pass", same.reason(
        "test_response_times[monitoring: Response times]"
    )
    changed = bench.run(bench.config(through(prometheus, new, baseline_selector=old, **canary), target=slow), *check)
    assert changed.reason("test_response_times[monitoring: Response times]").startswith(
        "slower than the previous release: p95 x"
    )
    facts = changed.facts(
        "test_response_times[monitoring: Response times]",
        "New release vs previous release (p95 latency over the window)",
    )
    assert facts["previous"].startswith("1000 * histogram_quantile(0.95, sum by (le) (rate(")


def test_prometheus_watches_the_embedded_default_and_its_monitoring_report_shows_the_queries(bench):
    """The embedded target starts its own Prometheus and node_exporter for a monitoring run (embedded.prometheus)."""
    binary("prometheus"), binary("prometheus-node-exporter", "node_exporter")
    checked = bench.run(bench.config(), "-m", "monitoring")
    print(f"pytest -m monitoring on the embedded target through Prometheus: {checked.seconds:.1f} s")
    assert checked.verdict == "PROCEED", checked.output[-3000:]
    measured = checked.facts("test_cpu_usage[monitoring]", "Service process")["measured"]
    assert measured.startswith('100 * sum(rate(process_cpu_seconds_total{service="embedded"}[')
    assert checked.manifest["run"]["target"]["prometheus"].endswith('(service="embedded")')
    report = (checked.run_dir / "report.html").read_text()
    assert "process_cpu_seconds_total{service=&quot;embedded&quot;}" in report
