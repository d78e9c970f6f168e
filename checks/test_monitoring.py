"""Monitoring (System Health, Application Metrics, Business Metrics) — and the Post-Release monitoring tasks that
read the same metrics. Everything comes from the live service's own metrics, its database and its host, after a
little synthetic traffic (its critical paths); metric names and limits come from [monitoring]."""

from relcheck.core.marks import for_items
from relcheck.core.problems import joined
from relcheck.core.statuses import require
from relcheck.probes import monitor


@for_items(("monitoring", "System Health", "CPU usage normal"))
def test_cpu_usage(phase, window, relcheck_config, evidence):
    cpu, limit = window.cpu_percent(), relcheck_config.monitoring.cpu_percent
    evidence.kv(
        "Service process",
        {"CPU": f"{cpu.value:.1f} % of a core{cpu.on}", "limit": f"{limit:g} % per process", "measured": cpu.how},
    )
    assert cpu.value <= limit, f"CPU {cpu.value:.0f} % > {limit:g} %{cpu.on}"


@for_items(("monitoring", "System Health", "Memory usage normal"))
def test_memory_usage(phase, window, relcheck_config, evidence):
    memory, limit = window.memory_mb(), relcheck_config.monitoring.memory_mb
    evidence.kv(
        "Service process",
        {
            "resident memory": f"{memory.value:.0f} MB{memory.on}",
            "limit": f"{limit:g} MB per process",
            "measured": memory.how,
        },
    )
    assert memory.value <= limit, f"memory {memory.value:.0f} MB > {limit:g} MB{memory.on}"


@for_items(("monitoring", "System Health", "Disk usage normal"))
def test_disk_usage(phase, window, request, relcheck_config, evidence):
    minimum = relcheck_config.monitoring.min_free_disk_percent
    from_node_exporter = window.disks()
    if from_node_exporter is not None:  # the service host through Prometheus (monitoring.source.host_selector)
        free, how = from_node_exporter
        evidence.table(
            f"Disks: {how}", ["instance and mount point", "free"], [(m, f"{v:.1f} %") for m, v in free.items()]
        )
        low = [f"{m}: {v:.1f} % free" for m, v in free.items() if v < minimum]
        assert not low, f"below {minimum:g} % free: {', '.join(low)}"
        return
    host_facts = request.getfixturevalue("host_facts")
    evidence.table(
        "Disks", ["for", "path", "free"], [(d.what, d.path, f"{d.free_percent:.1f} %") for d in host_facts.disks]
    )
    low = [f"{d.what}: {d.free_percent:.1f} % free" for d in host_facts.disks if d.free_percent < minimum]
    assert not low, f"below {minimum:g} % free: {', '.join(low)}"
    require(
        any(d.what == "database data" for d in host_facts.disks),
        "the database server's disk is not measured (only an embedded target's data directory is on this host)",
    )


@for_items(("monitoring", "System Health", "Network traffic normal"))
def test_network_traffic(phase, network_traffic, observation, relcheck_config, evidence):
    cfg, rate = relcheck_config.monitoring, network_traffic
    evidence.kv(
        "Traffic",
        {
            "requests/s over the window": f"{rate.counted:.2f} counted, {rate.own:.2f} of them relcheck's own at most",
            "bounds": rate.bounds,
            "measured": rate.how,
            "health round trip": f"{observation.health_rtt_ms:.1f} ms (limit {cfg.max_health_rtt_ms:g})",
            "synthetic traffic failures": "; ".join(observation.probe_failures) or "none",
        },
    )
    assert not rate.problem, rate.problem
    assert observation.health_rtt_ms <= cfg.max_health_rtt_ms, (
        f"health round trip {observation.health_rtt_ms:.0f} ms > {cfg.max_health_rtt_ms:g} ms"
    )
    assert not observation.probe_failures, f"synthetic traffic failed: {observation.probe_failures[0]}"
    require(not rate.unverified, rate.unverified)


@for_items(
    ("monitoring", "System Health", "Error rates normal"),
    ("monitoring", "Application Metrics", "Error rates"),
    ("post_release", "Post-Release Tasks / Monitoring", "Watch error rates"),
)
def test_error_rates(phase, window, canary_analysis, relcheck_config, evidence):
    shares, how = monitor.error_shares(window, relcheck_config.monitoring)
    evidence.table(f"5xx answers: {how}", ["route", "5xx", "requests", "share"], shares.rows)
    if shares.too_few:
        evidence.warn(
            f"5xx on routes with too few requests to judge (< {shares.min_requests}): {', '.join(shares.too_few)}"
        )
    assert not shares.problems, joined(shares.problems)
    if canary_analysis:  # the new release against the previous release's instances, over the same window
        canary = canary_analysis
        evidence.kv("New release vs previous release (5xx ratio over the window)", canary.errors_facts())
        require(not canary.errors_unverified, canary.errors_unverified)
        assert not canary.errors_problem, canary.errors_problem


@for_items(
    ("monitoring", "System Health", "Response times normal"),
    ("monitoring", "Application Metrics", "Response times"),
    ("post_release", "Post-Release Tasks / Monitoring", "Track performance metrics"),
)
def test_response_times(phase, window, canary_analysis, relcheck_config, evidence):
    latency, how = monitor.latencies(window, relcheck_config.monitoring)
    evidence.table(f"p95 per route: {how}", ["route", "p95 ms", "requests", "limit ms"], latency.rows)
    assert not latency.slow, f"p95 over the limit: {joined(latency.slow)}"
    require(not latency.unverified, latency.unverified)
    if canary_analysis:  # the new release against the previous release's instances, over the same window
        canary = canary_analysis
        evidence.kv("New release vs previous release (p95 latency over the window)", canary.latency_facts())
        require(not canary.latency_unverified, canary.latency_unverified)
        assert not canary.latency_problem, canary.latency_problem
        if canary.latency_warning:
            evidence.warn(canary.latency_warning)


@for_items(("monitoring", "Application Metrics", "Request rates"))
def test_request_rates(phase, window, relcheck_config, evidence):
    rates, how = window.rates_by_route()
    assert rates, f"{relcheck_config.monitoring.request_counter} is not exported"
    evidence.table(f"Requests per route: {how}", ["route", "requests/s"], [(r, f"{v:.2f}") for r, v in rates.items()])
    assert any(v > 0 for v in rates.values()), "no route's request rate grew during the synthetic traffic"


@for_items(("monitoring", "Application Metrics", "Cache hit rates"))
def test_cache_hit_rates(phase, window, relcheck_config, evidence):
    cfg = relcheck_config.monitoring
    require(cfg.cache_hits and cfg.cache_misses, "no cache counters configured (monitoring.cache_hits/misses)")
    require(cfg.min_cache_hit_rate, "no minimum cache hit rate configured (monitoring.min_cache_hit_rate)")
    hits, misses = window.total(cfg.cache_hits), window.total(cfg.cache_misses)
    assert hits is not None and misses is not None, f"{cfg.cache_hits} / {cfg.cache_misses} are not exported"
    used = hits.value + misses.value
    require(used, "the cache has not been used yet")
    rate = hits.value / used
    evidence.kv(
        "Cache",
        {
            "hits": f"{hits.value:.0f}",
            "misses": f"{misses.value:.0f}",
            "hit rate": f"{rate:.1%}",
            "minimum": f"{cfg.min_cache_hit_rate:.0%}",
            "measured": hits.how,
        },
    )
    assert rate >= cfg.min_cache_hit_rate, f"cache hit rate {rate:.1%} < {cfg.min_cache_hit_rate:.0%}"


@for_items(("monitoring", "Application Metrics", "Queue lengths"))
def test_queue_lengths(phase, window, relcheck_config, evidence):
    cfg = relcheck_config.monitoring
    queues = monitor.gauges(window, cfg.queue_gauges, cfg.max_queue, "queue")
    evidence.table("Queue", *queues.table())
    assert not queues.problem, queues.problem


@for_items(("monitoring", "Application Metrics", "Active connections"))
def test_active_connections(phase, window, relcheck_config, evidence):
    cfg = relcheck_config.monitoring
    connections = monitor.gauges(window, cfg.connection_gauges, cfg.max_connections, "connection")
    evidence.table("Connection", *connections.table())
    assert not connections.problem, connections.problem


@for_items(("monitoring", "Business Metrics", "Calculation success rate"))
def test_calculation_success_rate(phase, window, relcheck_config, evidence):
    calculations = monitor.success_ratio(window, relcheck_config.monitoring.calculations, "calculation success")
    evidence.kv("Calculation success", calculations.facts)
    assert not calculations.problem, calculations.problem


@for_items(("monitoring", "Business Metrics", "Data validation success"))
def test_data_validation_success(phase, window, relcheck_config, evidence):
    validations = monitor.success_ratio(window, relcheck_config.monitoring.validations, "validation success")
    evidence.kv("Validation success", validations.facts)
    assert not validations.problem, validations.problem


@for_items(("monitoring", "Business Metrics", "Contract enforcement status"))
def test_contract_enforcement(phase, window, relcheck_config, evidence):
    counter = relcheck_config.monitoring.contract_violations
    require(counter, "no contract-violation counter configured (monitoring.contract_violations)")
    violations = window.total(counter)
    assert violations is not None, f"{counter} is not exported"
    evidence.kv("Contract", {"counter": counter, "violations": f"{violations.value:.0f}", "measured": violations.how})
    assert violations.value == 0, f"{violations.value:.0f} contract violation(s) ({violations.how})"


@for_items(("monitoring", "Business Metrics", "Correlation analysis performance"))
def test_correlation_analysis_performance(phase, window, relcheck_config, evidence):
    cfg = relcheck_config.monitoring
    require(cfg.correlation_route, "no correlation route configured (monitoring.correlation_route)")
    latency, how = window.p95_per_route()
    require(cfg.correlation_route in latency, f"{cfg.correlation_route} has no observations")
    p95, route, limit_ms = latency[cfg.correlation_route], cfg.correlation_route, cfg.correlation_p95_ms
    evidence.kv(
        "Correlation analysis", {"route": route, "p95": f"{p95.shown} ms", "limit": f"{limit_ms:g} ms", "measured": how}
    )
    assert not p95.over(limit_ms), f"{route} p95 {p95.shown} ms > {limit_ms:g} ms"
    require(
        p95.over(limit_ms) is not None,
        f"{route} p95 {p95.shown} ms: above the top histogram bucket, not below {limit_ms:g} ms",
    )


@for_items(("monitoring", "Business Metrics", "Pattern detection accuracy"))
def test_pattern_detection_accuracy(phase, golden_results, relcheck_config, evidence):
    cfg = relcheck_config.monitoring
    require(golden_results, "no golden cases configured (monitoring.golden)")
    rows = [
        (", ".join(sorted(expected)), ", ".join(detected), problem or ("yes" if sorted(expected) == detected else "NO"))
        for expected, detected, problem in golden_results
    ]
    evidence.table("Golden cases", ["expected", "detected", "correct"], rows)
    correct = sum(1 for expected, detected, problem in golden_results if not problem and sorted(expected) == detected)
    accuracy = correct / len(golden_results)
    assert accuracy >= cfg.min_detection_accuracy, (
        f"pattern detection accuracy {accuracy:.0%} < {cfg.min_detection_accuracy:.0%} ({correct} of {len(rows)})"
    )
