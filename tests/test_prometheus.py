"""Monitoring through a real Prometheus (Debian's prometheus and prometheus-node-exporter packages, installed by
.ci/run and the README's test command): started here on loopback ports with a generated config that scrapes the
embedded services (added as they start, through a file_sd target file) and node_exporter every second."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fakes import GrowingHistogram

from conftest import LATENCY_FAULT_MS, background_traffic, installed
from relcheck.core.statuses import NotVerified
from relcheck.probes import metrics, monitor
from relcheck.probes.prometheus import Prometheus
from relcheck.target import prometheus_server, request_specs
from relcheck.target.embedded import EmbeddedRuntime
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


def scraped(prometheus: LocalPrometheus, target, selector: str, counter: str = "kundli_http_requests_total") -> None:
    """Wait until Prometheus holds the target's counter as it is now (a scrape after the traffic so far)."""
    now = metrics.scrape(target, "/metrics").value(counter) or 0
    prometheus.wait_for(f"sum({counter}{{{selector}}}) >= {now:g}")


def violations(target, count: int = 3) -> None:
    """Contract violations: requests with an API version the service does not speak."""
    for _ in range(count):
        target.http.request("GET", "/v1/kundli/1", "viewer", headers={"X-API-Version": "2"})


def restart(target) -> None:
    target.service.stop()
    target.service.start()
    EmbeddedRuntime.wait_healthy(target, 60)


def test_prometheus_monitoring_passes_on_the_healthy_service_and_shows_its_queries(bench, healthy, prometheus):
    selector = watch(prometheus, healthy, "healthy")
    traffic(healthy)
    scraped(prometheus, healthy, selector)
    changes = through(prometheus, selector)
    changes["monitoring"]["min_rps"] = 0.05  # the real traffic beside the run: about 10 requests/s
    selection = ("-m", "monitoring or post_release", "-k", f"{MONITORED} or network")
    with background_traffic([healthy], lead_s=0, clients=1, pause_s=0.1):
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
    assert measured.startswith('100 * max by (instance) (rate(process_cpu_seconds_total{service="healthy"}[1m]))')
    assert f"(Prometheus {prometheus.url}, {urlsplit(healthy.base_url).netloc})" in measured


def test_prometheus_monitoring_fails_on_cpu_memory_errors_and_latency(bench, faulty, prometheus):
    target = faulty(
        latency={"route": "GET /v1/kundli/{chart_id}", "ms": LATENCY_FAULT_MS},
        error_rate=0.3,
        memory_hog_mb=450,
        cpu_burn_ms=500,
    )
    twin = faulty(cpu_burn_ms=500)  # another replica as busy
    selector = watch(prometheus, target, "faulty")
    address = urlsplit(target.base_url).netloc
    for replica in (target, twin):
        prometheus.watch(urlsplit(replica.base_url).netloc, "replicas")
    idle = faulty(uncounted_health=True)  # an idle replica beside the faulty one (its scrapes not counted)
    prometheus.watch(urlsplit(idle.base_url).netloc, "faulty")
    prometheus.wait_for('count(up{service="faulty"} == 1) == 2 and count(up{service="replicas"} == 1) == 2')
    for replica in (target, twin):
        traffic(replica, 12)  # 12 x 500 ms of CPU: ~10 % of a core each over the 1 m window
    scraped(prometheus, target, selector)
    scraped(prometheus, twin, 'service="replicas"')
    # two replicas at ~10 % each are within a 15 % per-process limit (summed they would read ~20 %); the run's
    # own synthetic traffic goes to the idle instance, outside the selector
    replicas = through(prometheus, 'service="replicas"')
    replicas["monitoring"]["cpu_percent"] = 15
    checked = bench.run(bench.config(replicas, target=idle), "-m", "monitoring", "-k", "cpu_usage")
    assert checked.status("test_cpu_usage[monitoring]") == "pass", checked.reason("test_cpu_usage[monitoring]")
    facts = checked.facts("test_cpu_usage[monitoring]", "Service process")
    assert facts["limit"] == "15 % per process" and " % of a core on 127.0.0.1:" in facts["CPU"]
    changes = through(prometheus, selector)
    changes["monitoring"]["cpu_percent"] = 5
    checked = bench.run(bench.config(changes, target=target), "-m", "monitoring", "-k", MONITORED)
    cpu = checked.reason("test_cpu_usage[monitoring]")  # judged per process: the busy replica, named
    assert cpu.startswith("CPU ") and cpu.endswith(f" > 5 % on {address}"), cpu
    assert checked.reason("test_memory_usage[monitoring]").startswith("memory ")
    assert checked.reason("test_memory_usage[monitoring]").endswith(f" on {address}")
    assert "5xx answers:" in checked.reason("test_error_rates[monitoring: Error rates normal]")
    slow = checked.reason("test_response_times[monitoring: Response times]")  # CPU burn slows every route
    assert slow.startswith("p95 over the limit: ") and "GET /v1/kundli/{chart_id}" in slow


def test_prometheus_reads_the_hosts_disks_and_what_it_collects_after_a_deploy(bench, healthy, prometheus):
    selector = watch(prometheus, healthy, "healthy")
    traffic(healthy)
    scraped(prometheus, healthy, selector)
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


def test_prometheus_canary_compares_the_new_release_with_the_previous_one(bench, healthy, faulty, prometheus):
    # slower by far more than a busy machine's jitter: the detection must not hinge on a quiet CI host
    slow, erring = faulty(latency={"route": "GET /v1/kundli/{chart_id}", "ms": 300}), faulty(error_rate=0.3)
    old, new, worse = (
        watch(prometheus, t, name) for t, name in ((healthy, "healthy"), (slow, "slow"), (erring, "erring"))
    )
    window_s = 20
    canary = {"window": f"{window_s}s", "step_s": 2}
    check = ("-m", "monitoring", "-k", "response_times or error_rates")
    slower = through(prometheus, new, baseline_selector=old, **canary)
    slower["monitoring"]["p95_ms"] = 1000  # within the absolute limit: the comparison with the old release decides
    with background_traffic([healthy, slow], window_s):
        changed = bench.run(bench.config(slower, target=slow), *check)
    assert changed.reason("test_response_times[monitoring: Response times]").startswith(
        "slower than the previous release: p95 x"
    )
    facts = changed.facts(
        "test_response_times[monitoring: Response times]",
        "New release vs previous release (p95 latency over the window)",
    )
    assert facts["previous"].startswith("1000 * histogram_quantile(0.95, sum by (le) (rate(")
    tolerant = through(prometheus, worse, baseline_selector=old, **canary)
    tolerant["monitoring"] |= {"error_budget": 0.4, "route_error_budget": 1.0}  # within limits, worse than before
    same = through(prometheus, old, baseline_selector=old, **canary)
    with background_traffic([healthy, erring], window_s):
        errors = bench.run(bench.config(tolerant, target=erring), *check)
        same_run = bench.run(bench.config(same, target=healthy), *check)
    assert errors.reason("test_error_rates[monitoring: Error rates]").startswith("more 5xx than the previous release")
    assert same_run.status("test_error_rates[monitoring: Error rates]") == "pass"
    latency = "test_response_times[monitoring: Response times]"  # never a false alarm; too noisy on a busy machine
    assert same_run.status(latency) == "pass" or same_run.reason(latency).startswith("too noisy to compare"), (
        same_run.reason(latency)
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
    # nobody but relcheck sends the embedded target requests: its traffic is not normal traffic (not verified)
    network = checked.reason("test_network_traffic[monitoring]")
    assert checked.status("test_network_traffic[monitoring]") == "not verified" and "relcheck's own" in network
    monitored = [
        s for t, (s, _) in checked.statuses().items() if not t.startswith(("test_rollback_trigger", "test_network"))
    ]
    assert "fail" not in monitored and "not verified" not in monitored, checked.statuses()
    measured = checked.facts("test_cpu_usage[monitoring]", "Service process")["measured"]
    assert measured.startswith('100 * max by (instance) (rate(process_cpu_seconds_total{service="embedded"}[')
    assert checked.manifest["run"]["target"]["prometheus"].endswith('(service="embedded")')
    report = (checked.run_dir / "report.html").read_text()
    assert "process_cpu_seconds_total{service=&quot;embedded&quot;}" in report


@pytest.mark.slow
def test_a_restart_inside_the_window_is_counted_across_the_reset(bench, runtime, prometheus, default_config):
    """Counters reset when the service restarts: the window's counts go across the reset (increase()), never
    negative; three violations after a restart are three; a series with no samples yet is not verified."""
    restarted, violated = runtime.spawn({"uncounted_health": True}), runtime.spawn({})
    quiet, noisy = watch(prometheus, restarted, "restarted"), watch(prometheus, violated, "violated")
    contract = "-m", "monitoring", "-k", "contract_enforcement"

    def window(selector: str) -> monitor.PrometheusWindow:
        update = {"kind": "prometheus", "url": prometheus.url, "service_selector": selector, "window": "30s"}
        source = default_config.monitoring.source.model_copy(update=update)
        return monitor.PrometheusWindow(Prometheus(prometheus.url), source, default_config.monitoring)

    # just started, nothing counted yet (health is not counted): no samples yet, not "not exported"
    with pytest.raises(NotVerified, match=r"^no samples for kundli_http_requests_total in the window yet: the "):
        window(quiet).rates_by_route()
    for target in (restarted, violated):
        violations(target)
    counter = "kundli_contract_violations_total"
    both = f"{counter}{{{quiet}}} offset 30s == 3 and on() {counter}{{{noisy}}} offset 30s == 3"
    prometheus.wait_for(both, 60)
    for target in (restarted, violated):  # older than the 30 s window now; a restart inside it resets the counters
        restart(target)
    prometheus.wait_for(f"{counter}{{{quiet}}} == 0 and on() {counter}{{{noisy}}} == 0")

    def counted() -> monitor.Measured:
        found = window(noisy).total(counter)
        assert found is not None and "(re)started inside the window: 127.0.0.1:" in found.how, found
        return found

    difference = Prometheus(prometheus.url).one(f"sum({counter}{{{noisy}}} - {counter}{{{noisy}}} offset 30s)")
    assert (counted().value, difference) == (0, -3)  # what the difference read: -3 violations
    violations(violated)
    prometheus.wait_for(f"{counter}{{{noisy}}} == 3")
    difference = Prometheus(prometheus.url).one(f"sum({counter}{{{noisy}}} - {counter}{{{noisy}}} offset 30s)")
    assert 3 <= counted().value < 3.5 and difference == 0  # increase() extrapolates to the window's edges
    broken = bench.run(bench.config(through(prometheus, noisy, window="30s"), target=violated), *contract)
    assert broken.reason("test_contract_enforcement[monitoring]").startswith("3 contract violation(s) (")
    traffic(restarted, 10)
    request_specs.walk(restarted, default_config.post_deploy.critical_paths)  # its labelled families appear
    scraped(prometheus, restarted, quiet)
    healthy = through(prometheus, quiet, window="30s")
    healthy["monitoring"]["min_rps"] = 0.05
    selection = ("-m", "monitoring or post_deploy", "-k", "contract or request_rates or network or metrics_collection")
    with background_traffic([restarted], lead_s=0, clients=1, pause_s=0.1):  # real traffic, not relcheck's own
        checked = bench.run(bench.config(healthy, target=restarted), *selection)
    for check in (
        "test_contract_enforcement[monitoring]",
        "test_request_rates[monitoring]",
        "test_network_traffic[monitoring]",
        "test_verify_metrics_collection",
    ):
        assert checked.status(check) == "pass", (check, checked.reason(check))
    assert checked.facts("test_contract_enforcement[monitoring]", "Contract")["violations"] == "0"


def test_prometheus_reads_a_p95_above_the_top_bucket_as_more_than_its_bound(prometheus, default_config):
    """10 % of responses above the top finite bucket (2.5 s): Prometheus' histogram_quantile answers 2500 ms, which
    passed a 2.5 s SLA; the bucket rates say the p95 is more than that — a 2 s limit fails, a 2.5 s one is unknown."""
    exporter = GrowingHistogram()
    try:
        cfg = default_config.monitoring
        selector = prometheus.watch(urlsplit(exporter.url).netloc, "slow-histogram")
        buckets = f"{cfg.latency_histogram}_bucket{{{selector}}}"
        prometheus.wait_for(f"sum(rate({buckets}[1m])) > 0")
        server = Prometheus(prometheus.url)
        assert server.one(f"1000 * histogram_quantile(0.95, sum by (le) (rate({buckets}[1m])))") == 2500
        source = cfg.source.model_copy(update={"kind": "prometheus", "service_selector": selector, "window": "1m"})
        found, how = monitor.PrometheusWindow(server, source, cfg).p95_per_route()
        p95 = found["GET /v1/x"]
        assert (p95.shown, p95.over(2000), p95.over(2500)) == ("> 2500.0", True, None), how
    finally:
        exporter.close()


def test_the_embedded_window_counts_nothing_from_before_prometheus_watched(faulty, prometheus, default_config):
    """Validations that failed before Prometheus first scraped the service are not the window's: a counter with no
    sample at the range's start would count whole, so the window starts at that first scrape."""
    target = faulty()
    birth = {"datetime": "1990-08-15T10:00:00+05:30", "latitude": 80.0, "longitude": 77.21}  # polar: a failed one
    for _ in range(10):
        target.http.request("POST", "/v1/kundli", "operator", json_body={"name": "polar", "birth": birth})
    selector = watch(prometheus, target, "watched-late")
    first_scrape = prometheus.first_scrape(selector)
    for n in range(3):
        ok = {"name": f"ok-{n}", "birth": {**birth, "latitude": 28.61}}
        assert target.http.request("POST", "/v1/kundli", "operator", json_body=ok).status == 201
    scraped(prometheus, target, selector, "kundli_validations_total")
    cfg = default_config.monitoring
    source = cfg.source.model_copy(update={"kind": "prometheus", "url": prometheus.url, "service_selector": selector})
    window = monitor.PrometheusWindow.since(Prometheus(prometheus.url), source, cfg, first_scrape)
    ratio = monitor.success_ratio(window, cfg.validations, "validation success")
    # the 10 failed before the watch are not the window's (increase() extrapolates the 3 good ones over the range)
    assert ratio.good == ratio.total >= 3 and not ratio.problem, ratio.facts
