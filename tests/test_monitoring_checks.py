"""Monitoring: every System Health, Application Metrics and Business Metrics check passes on the healthy
service and fails when its metric shows trouble (fault switches, bad traffic, or limits it cannot meet)."""

import itertools
import threading
import time
from contextlib import contextmanager

import pytest
from fakes import latency_histogram

from conftest import LATENCY_FAULT_MS, background_traffic
from relcheck.core.statuses import NotVerified
from relcheck.probes import metrics, monitor
from relcheck.run.runner import read_config, write_config
from relcheck.target import request_specs
from relcheck.target.embedded import EmbeddedRuntime

MONITORING = [
    "test_cpu_usage",
    "test_memory_usage",
    "test_disk_usage",
    "test_error_rates",
    "test_response_times",
    "test_request_rates",
    "test_cache_hit_rates",
    "test_queue_lengths",
    "test_active_connections",
    "test_calculation_success_rate",
    "test_data_validation_success",
    "test_contract_enforcement",
    "test_correlation_analysis_performance",
    "test_pattern_detection_accuracy",
]


@pytest.mark.parametrize("check", MONITORING)
def test_passes_on_the_healthy_reference_service(healthy_run, check):
    found = {n: s for n, s in healthy_run.statuses().items() if n.startswith(check + "[monitoring")}
    assert found, f"no {check}[monitoring...] in the healthy run"
    for name, (status, reason) in found.items():
        assert status == "pass", (name, reason)


def test_every_monitoring_item_is_covered(healthy_run):
    items = [i for i in healthy_run.manifest["items"] if i["section"].startswith("Monitoring /")]
    assert len(items) == 17 and all(i["checks"] for i in items)


@contextmanager
def bad_traffic(target):
    """Until the block ends, the wrong API version, invalid birth data and fresh charts (each a cache miss; with
    broken_contract half break the contract), each compared with itself (the slow route, often enough to judge its
    p95: monitoring.min_route_requests)."""
    stop, sent, fresh = threading.Event(), threading.Event(), itertools.count()

    def client() -> None:
        chart = None
        while not stop.is_set():
            target.http.request("GET", "/v1/kundli/1", "viewer", headers={"X-API-Version": "2"})
            target.http.request("POST", "/v1/kundli", "operator", json_body={"name": "x", "birth": {"latitude": 99}})
            for _ in range(3):
                n = next(fresh)
                birth = {"datetime": "1990-08-15T10:00:00+05:30", "latitude": 10 + n / 1000, "longitude": 77.21}
                made = target.http.request(
                    "POST", "/v1/kundli", "operator", json_body={"name": f"f{n}", "birth": birth}
                )
                chart = made.json["id"] if made.status == 201 else chart
            if chart is not None:
                target.http.request(
                    "POST", "/v1/compatibility", "viewer", json_body={"chart_a": chart, "chart_b": chart}
                )
                sent.set()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        assert sent.wait(60), "the bad traffic never got through one round"
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_service_faults_and_bad_traffic_show_in_the_metrics(bench, faulty):
    target = faulty(
        error_rate=0.2,
        memory_hog_mb=450,
        missing_metric="kundli_job_queue_length",
        latency={"route": "POST /v1/compatibility", "ms": LATENCY_FAULT_MS},
        broken_contract=0.5,
    )
    with bad_traffic(target):  # inside the monitoring window: what came before it is not the window's
        checked = bench.run(bench.config(target=target), "-m", "monitoring")
    reason = checked.reason
    assert "requests > budget 1.0%" in reason("test_error_rates[monitoring: Error rates normal]")
    assert reason("test_memory_usage[monitoring]").startswith("memory")
    assert reason("test_queue_lengths[monitoring]") == "not exported: kundli_job_queue_length"
    assert "contract violation(s) (two scrapes of the service's metrics" in reason(
        "test_contract_enforcement[monitoring]"
    )
    assert reason("test_cache_hit_rates[monitoring]").startswith("cache hit rate")
    assert reason("test_data_validation_success[monitoring]").startswith("validation success:")
    assert reason("test_calculation_success_rate[monitoring]").startswith("calculation success:")
    assert reason("test_correlation_analysis_performance[monitoring]").startswith("POST /v1/compatibility p95")
    assert "POST /v1/compatibility" in reason("test_response_times[monitoring: Response times]"), {
        k: v for k, v in checked.statuses().items() if "response_times" in k
    }
    # the monitoring run decides on the triggers it observes; the pre-release scans are not re-decided here
    assert checked.verdict == "ROLLBACK" and checked.returncode == 3
    for trigger, check in (
        ("Critical service failure", "test_error_rates[monitoring: Error rates normal]"),
        ("Unacceptable performance", "test_memory_usage[monitoring]"),
        ("Data integrity issues", "test_contract_enforcement[monitoring]"),
    ):
        assert f"{check} fail" in reason(f"test_rollback_trigger[{trigger}]"), trigger
    assert "test_rollback_trigger[Security vulnerabilities]" not in checked.statuses()


def test_limits_the_service_cannot_meet_fail(bench, healthy):
    golden = [
        {
            "create": {
                "method": "POST",
                "path": "/v1/kundli",
                "role": "operator",
                "body": {
                    "name": "golden",
                    "birth": {"datetime": "1990-08-15T10:00:00+05:30", "latitude": 28.61, "longitude": 77.21},
                },
            },
            "detect": {"method": "GET", "path": "/v1/kundli/{id}/yogas", "role": "viewer"},
            "list_field": "yogas",
            "expect": ["Gajakesari"],
        }
    ]
    limits = {
        "cpu_percent": 0.001,
        "min_free_disk_percent": 100,
        "max_rps": 0.001,
        "max_connections": 0,
        "golden": golden,
    }
    typo = {"Unacceptable performance": ["test_cpu_usage[monitoring]", "test_cpu_usage"]}
    checked = bench.run(
        bench.config({"monitoring": limits, "rollback": {"triggers": typo}}, target=healthy), "-m", "monitoring"
    )
    assert (
        checked.reason("test_rollback_trigger[Unacceptable performance]")
        == "rollback.triggers names no such check: test_cpu_usage"
    )
    for check in (
        "test_cpu_usage",
        "test_disk_usage",
        "test_active_connections",
        "test_pattern_detection_accuracy",
    ):
        assert checked.status(f"{check}[monitoring]") == "fail", check
    assert (
        checked.reason("test_pattern_detection_accuracy[monitoring]") == "pattern detection accuracy 0% < 100% (0 of 1)"
    )


def test_two_scrapes_around_a_restart_count_since_the_restart_never_negative(runtime, default_config):
    """Scrape mode: counters that went down between the scrapes were reset by a restart; the window counts what
    came after it (Prometheus' increase() semantics), says so, and a series not back yet is not verified."""
    target, cfg = runtime.spawn({}), default_config.monitoring
    walked = request_specs.walk(target, default_config.post_deploy.critical_paths)  # a calculation (labelled)
    assert all(step.ok for step in walked), walked
    for n in range(20):
        target.http.get(f"/v1/kundli/{n % 5 + 1}", role="viewer")
    first, started = metrics.scrape(target, "/metrics"), time.monotonic()
    target.service.stop()
    target.service.start()
    EmbeddedRuntime.wait_healthy(target, 60)
    for _ in range(3):  # contract violations after the restart
        target.http.request("GET", "/v1/kundli/1", "viewer", headers={"X-API-Version": "2"})
    second = metrics.scrape(target, "/metrics")
    window = monitor.ScrapeWindow(first, second, time.monotonic() - started, cfg)
    assert window.restart
    cpu, rate = window.cpu_percent(), window.request_rate()
    assert cpu.value >= 0 and rate.value > 0 and all(v >= 0 for v in window.rates_by_route()[0].values())
    assert f"the service restarted between them at {window.restart}: counted since" in rate.how
    contract = window.total(cfg.contract_violations)
    assert contract is not None and contract.value == 3, contract
    collected = window.collection(["kundli_http_requests_total"], "the violations")
    assert collected.counters["kundli_http_requests_total"] > 0 and "restarted" in collected.how
    assert cfg.calculations is not None
    with pytest.raises(NotVerified, match=r"^no samples for kundli_calculations_total since the service restarted"):
        window.total(cfg.calculations.counter)  # counted before the restart, not since
    quiet = monitor.ScrapeWindow(first, first, 1.0, cfg)  # no restart: a series that is not there is not exported
    assert quiet.total("no_such_total") is None and not quiet.restart


def test_request_rates_fail_when_the_request_counter_is_not_exported(bench, faulty):
    checked = bench.run(
        bench.config(target=faulty(missing_metric="kundli_http_requests")), "-m", "monitoring", "-k", "request_rates"
    )
    assert checked.reason("test_request_rates[monitoring]") == "kundli_http_requests_total is not exported"


def test_network_traffic_is_judged_on_real_traffic_never_on_relchecks_own(bench, healthy):
    """Nobody but relcheck sends the embedded service requests: its synthetic traffic meets no lower bound. Real
    traffic beside the run passes the bounds, breaks a maximum it exceeds, and a service that counts nothing fails."""
    check, selection = "test_network_traffic[monitoring]", ("-m", "monitoring", "-k", "network_traffic")
    alone = bench.run(bench.config(target=healthy), *selection)
    assert alone.status(check) == "not verified"
    assert alone.reason(check).startswith("real traffic 0.00..") and "no traffic but relcheck's" in alone.reason(check)
    with background_traffic([healthy], lead_s=0, clients=1, pause_s=0.05):  # about 20 requests/s
        real = bench.run(bench.config(target=healthy), *selection)
        busy = bench.run(bench.config({"monitoring": {"max_rps": 1}}, target=healthy), *selection)
    assert real.status(check) == "pass", real.reason(check)
    assert busy.status(check) == "fail" and busy.reason(check).endswith(
        "besides relcheck's own, above 0.5..1 requests/s"
    )
    quiet = bench.run(bench.config({"monitoring": {"min_rps": 1000, "max_rps": 2000}}, target=healthy), *selection)
    assert quiet.reason(check).endswith("relcheck's own included, below 1000..2000 requests/s")


def test_a_threshold_that_is_not_set_is_not_verified_never_a_default_that_cannot_fail(bench, healthy):
    data = read_config(bench.config(target=healthy))
    for key in ("min_cache_hit_rate", "min_rps", "max_rps"):
        del data["monitoring"][key]
    config = write_config(data, bench.tmp / "unset.toml")
    checked = bench.run(config, "-m", "monitoring", "-k", "cache_hit or network_traffic")
    assert checked.status("test_cache_hit_rates[monitoring]") == "not verified"
    assert checked.reason("test_cache_hit_rates[monitoring]") == (
        "no minimum cache hit rate configured (monitoring.min_cache_hit_rate)"
    )
    assert checked.status("test_network_traffic[monitoring]") == "not verified"
    assert checked.reason("test_network_traffic[monitoring]").startswith("no request-rate bounds configured")


def test_relcheck_monitor_reruns_the_phase_shows_the_timeline_and_stops_on_a_trigger(bench, healthy, faulty):
    from conftest import relcheck_cli

    config = bench.config(target=healthy)
    watched = relcheck_cli(config, "monitor", "--for", "1h", "--every", "1s", "--runs", "2", env=bench.env)
    runs = [line for line in watched.stdout.splitlines() if " monitoring run " in line]
    assert len(runs) == 2, watched.stdout + watched.stderr  # however long a run takes on this machine
    report = next((bench.tmp / "reports").rglob("monitoring/report.html")).read_text()
    assert f"Timeline: {len(runs)} monitoring runs of this release" in report
    assert len(list((bench.tmp / "reports").rglob("monitoring/history/*/manifest.json"))) == len(runs) - 1
    broken = bench.config(target=faulty(error_rate=0.5), name="broken.toml")
    stopped = relcheck_cli(broken, "monitor", "--for", "1h", "--every", "1s", env=bench.env)
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert " monitoring run 1: ROLLBACK " in stopped.stdout and "a rollback trigger fired: stopping" in stopped.stdout


def test_scrape_mode_counts_server_errors_over_the_window_not_since_the_start(runtime, default_config):
    """5xx answered before the first scrape (a probe's, a setup's) are not the window's; those inside it are."""
    target, cfg = runtime.spawn({"broken_read": True}), default_config.monitoring
    for n in range(3):
        assert target.http.get(f"/v1/kundli/{n + 1}", role="viewer").status == 500  # before the window
    first = metrics.scrape(target, "/metrics")
    walked = request_specs.walk(target, default_config.post_deploy.critical_paths[:1])  # a calculation: 201
    assert walked and walked[0].ok, walked
    quiet = monitor.ScrapeWindow(first, metrics.scrape(target, "/metrics"), 1.0, cfg)
    per_route, how = quiet.server_errors()
    assert sum(bad for bad, _ in per_route.values()) == 0 and sum(t for _, t in per_route.values()) > 0, per_route
    assert "between" in how or "scrape" in how, how
    assert target.http.get("/v1/kundli/1", role="viewer").status == 500  # inside the next window
    errors, _ = monitor.ScrapeWindow(first, metrics.scrape(target, "/metrics"), 1.0, cfg).server_errors()
    assert sum(bad for bad, _ in errors.values()) == 1, errors


def test_two_scrapes_that_reach_different_processes_are_not_verified_never_a_restart(runtime, default_config):
    """A multi-process server (gunicorn workers, each with its own /metrics) or replicas behind one address: the
    second scrape's process was running before the first scrape, so its counters are not the window's growth."""
    worker_a, worker_b = runtime.spawn({}), runtime.spawn({"uncounted_health": True})
    for n in range(20):
        worker_b.http.get(f"/v1/kundli/{n % 5 + 1}", role="viewer")  # a worker with a lifetime of its own
    first = metrics.scrape(worker_a, "/metrics")
    second = metrics.scrape(worker_b, "/metrics")
    with pytest.raises(NotVerified, match=r"^the two scrapes of the service's metrics reached different processes"):
        monitor.ScrapeWindow(first, second, 1.0, default_config.monitoring)
    same = monitor.ScrapeWindow(first, metrics.scrape(worker_a, "/metrics"), 1.0, default_config.monitoring)
    assert not same.restart


def test_a_p95_above_the_top_bucket_is_more_than_its_bound_never_the_bound(default_config):
    """30 s responses of a histogram whose top finite bucket is 2.5 s: the p95 is "> 2500 ms", which fails a 2 s limit
    and cannot be compared with a 2.5 s or 3 s one (never a pass); a p95 inside the buckets is judged as before."""
    cfg = default_config.monitoring
    slow = {"0.5": 50, "2.5": 90, "+Inf": 100}  # 10 % took longer than 2.5 s
    found = monitor.p95_per_route(
        metrics.parse(latency_histogram("/v1/x", slow)), cfg.latency_histogram, ["method", "route"]
    )
    p95 = found["GET /v1/x"]
    assert (p95.p95_ms, p95.above, p95.shown, p95.observations) == (2500.0, True, "> 2500.0", 100)
    assert p95.over(2000) is True and p95.over(2500) is None and p95.over(3000) is None
    fast = {"0.5": 50, "2.5": 100, "+Inf": 100}
    found = monitor.p95_per_route(
        metrics.parse(latency_histogram("/v1/x", fast)), cfg.latency_histogram, ["method", "route"]
    )
    p95 = found["GET /v1/x"]
    assert not p95.above and p95.p95_ms == pytest.approx(2300.0)
    assert p95.over(2000) is True and p95.over(2500) is False


class AnsweringPrometheus:
    """A Prometheus server's answers to the window's queries: histogram_quantile as Prometheus computes it (the top
    finite bucket's bound when the p95 falls in +Inf), the route's bucket rates and its observation count."""

    url = "http://prometheus.invalid"

    def __init__(self, buckets: dict[str, float]) -> None:
        self.buckets, self.sent = buckets, []

    def require_up(self, selector):
        return ["app:8000"]

    def pinned(self, at):
        return self

    def query(self, promql, empty_ok=False):
        from relcheck.probes.prometheus import Sample

        self.sent.append(promql)
        route = {"method": "GET", "route": "/v1/x"}
        if promql.startswith("1000 * histogram_quantile"):
            return [Sample(route, 2500.0)]  # what Prometheus answers for a p95 in +Inf
        if promql.startswith("sum by (le,"):
            return [Sample({**route, "le": le}, rate) for le, rate in self.buckets.items()]
        return [Sample(route, self.buckets["+Inf"] * 600)]


def test_prometheus_p95_above_the_top_bucket_is_more_than_its_bound(default_config):
    cfg = default_config.monitoring
    source = cfg.source.model_copy(update={"kind": "prometheus", "service_selector": 'job="x"'})
    server = AnsweringPrometheus({"0.5": 0.05, "2.5": 0.09, "+Inf": 0.1})
    found, how = monitor.PrometheusWindow(server, source, cfg).p95_per_route()
    p95 = found["GET /v1/x"]
    assert (p95.shown, p95.observations, p95.over(2000), p95.over(2500)) == ("> 2500.0", 60.0, True, None)
    assert 'sum by (le, method, route) (rate(kundli_http_request_duration_seconds_bucket{job="x"}[10m]))' in how
    server = AnsweringPrometheus({"0.5": 0.05, "2.5": 0.1, "+Inf": 0.1})  # all inside: Prometheus' answer stands
    found, _ = monitor.PrometheusWindow(server, source, cfg).p95_per_route()
    assert not found["GET /v1/x"].above and found["GET /v1/x"].over(2000) is True


def counters_text(ok: int, failed: int, hits: int, misses: int, violations: int, fast: int, slow: int) -> str:
    """The reference service's counters as it exports them: validations by result, cache hits/misses, contract
    violations and a latency histogram with `fast` requests under 0.1 s and `slow` ones above the top bucket."""
    return (
        "# TYPE kundli_validations_total counter\n"
        f'kundli_validations_total{{result="ok"}} {ok}\nkundli_validations_total{{result="failed"}} {failed}\n'
        f"# TYPE kundli_cache_hits_total counter\nkundli_cache_hits_total {hits}\n"
        f"# TYPE kundli_cache_misses_total counter\nkundli_cache_misses_total {misses}\n"
        f"# TYPE kundli_contract_violations_total counter\nkundli_contract_violations_total {violations}\n"
        + latency_histogram("/v1/x", {"0.1": fast, "2.5": fast, "+Inf": fast + slow})
    )


def test_scrape_window_counts_are_the_windows_growth_never_the_lifetime(default_config):
    """A bad history before the window (a test run's negative cases: failed validations, misses, violations, slow
    answers) does not fail a clean window; the same troubles inside the window do."""
    cfg = default_config.monitoring
    assert cfg.validations is not None

    def window(first: str, second: str) -> monitor.ScrapeWindow:
        return monitor.ScrapeWindow(metrics.parse(first), metrics.parse(second), 2.0, cfg)

    history = counters_text(ok=10, failed=90, hits=0, misses=100, violations=7, fast=0, slow=100)
    clean = window(history, counters_text(ok=60, failed=90, hits=50, misses=105, violations=7, fast=100, slow=100))
    validations = monitor.success_ratio(clean, cfg.validations, "validation success")
    assert (validations.good, validations.total, validations.problem) == (50, 50, "")
    assert "two scrapes" in validations.how
    hits, misses = clean.total(cfg.cache_hits), clean.total(cfg.cache_misses)
    assert hits is not None and misses is not None and (hits.value, misses.value) == (50, 5)
    violations = clean.total(cfg.contract_violations)
    assert violations is not None and violations.value == 0 and "two scrapes" in violations.how
    p95 = clean.p95_per_route()[0]["GET /v1/x"]
    assert (p95.observations, p95.above, p95.over(250)) == (100, False, False)
    # the lifetime of the same service, as one scrape reads it, would have failed every one of them
    lifetime = monitor.p95_per_route(metrics.parse(history), cfg.latency_histogram, cfg.route_labels)["GET /v1/x"]
    assert lifetime.over(250) is True

    bad = window(history, counters_text(ok=60, failed=140, hits=50, misses=200, violations=9, fast=100, slow=200))
    assert monitor.success_ratio(bad, cfg.validations, "validation success").problem == (
        "validation success: 50.00% < 90%"
    )
    hits, misses = bad.total(cfg.cache_hits), bad.total(cfg.cache_misses)
    assert hits is not None and misses is not None and hits.value / (hits.value + misses.value) < 0.5
    violations = bad.total(cfg.contract_violations)
    assert violations is not None and violations.value == 2
    slow = bad.p95_per_route()[0]["GET /v1/x"]
    assert (slow.observations, slow.above, slow.over(250)) == (200, True, True)
    with pytest.raises(NotVerified, match="counted nothing in the window"):
        monitor.success_ratio(window(history, history), cfg.validations, "validation success")


class RangingPrometheus:
    """A Prometheus' range answers for the canary: each release's bucket rates per step (selector -> steps), and
    its p95 series as histogram_quantile answers it (the top finite bucket's bound for a step above it)."""

    url = "http://prometheus.invalid"

    def __init__(self, steps: dict[str, list[dict[str, float]]]) -> None:
        self.steps = steps

    def require_up(self, selector):
        return ["app:8000"]

    def pinned(self, at):
        return self

    def of(self, promql: str) -> list[dict[str, float]]:
        return next(steps for selector, steps in self.steps.items() if selector in promql)

    def range(self, promql, start, end, step):
        found = [metrics.quantile({float(le): v for le, v in s.items()}, 0.95) for s in self.of(promql)]
        return [1000 * q.value for q in found if q is not None]

    def range_series(self, promql, start, end, step):
        steps = self.of(promql)
        return [({"le": le}, [(float(t), s[le]) for t, s in enumerate(steps)]) for le in steps[0]]


def test_canary_steps_above_the_top_bucket_are_never_a_pass(default_config):
    """The previous release answers in about 2 s, the new one in 30 s over a histogram whose top finite bucket is 2.5 s:
    histogram_quantile caps the new p95 at 2500 ms, x1.25 — within the critical increase, a warning at most. Such
    steps are more than the bound: not verified, never a pass. A healthy comparison inside the buckets is judged."""
    cfg = default_config.monitoring
    source = cfg.source.model_copy(
        update={"kind": "prometheus", "service_selector": 'job="new"', "baseline_selector": 'job="old"'}
    )
    old = [{"0.5": 0.0, "2.5": 9.6 + i / 100, "+Inf": 10.0} for i in range(20)]  # p95 1.9..2.2 s
    slow = [{"0.5": 0.0, "2.5": 0.0, "+Inf": 10.0} for _ in range(20)]  # every answer above 2.5 s
    baseline = default_config.performance.baseline
    capped = monitor.latency_canary(
        monitor.PrometheusWindow(RangingPrometheus({"new": slow, "old": old}), source, cfg), baseline
    )
    assert capped.latency_unverified.startswith("the releases are not compared: p95 above the top histogram bucket")
    assert "new release 20 of 20 steps > 2500 ms" in capped.latency_unverified and not capped.latency_problem
    # the lower bounds alone would have been a warning, never a fail: the false pass the check no longer gives
    assert monitor.judge.compare("p95", [2000.0] * 10 + [2100.0] * 10, [2500.0] * 20, 0.98, 1.1, 1.3).verdict == "warn"
    same = monitor.latency_canary(
        monitor.PrometheusWindow(RangingPrometheus({"new": old, "old": old}), source, cfg), baseline
    )
    assert same.comparison is not None and not same.capped and not same.latency_problem
    # the previous release above the bucket, the new one inside it: the ratio is an upper bound, a pass stands
    fast = [{"0.5": 9.6 + i / 100, "2.5": 10.0, "+Inf": 10.0} for i in range(20)]
    before = monitor.latency_canary(
        monitor.PrometheusWindow(RangingPrometheus({"new": old, "old": slow}), source, cfg), baseline
    )
    assert before.comparison is not None and before.comparison.verdict == "pass", before.latency_facts()
    after = monitor.latency_canary(
        monitor.PrometheusWindow(RangingPrometheus({"new": slow, "old": fast}), source, cfg), baseline
    )
    assert after.comparison is not None and after.latency_problem.startswith("slower than the previous release: p95 x")
    assert after.latency_problem.endswith("at least (new release 20 of 20 steps > 2500 ms)")
