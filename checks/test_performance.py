"""Pre-Release Verification / Performance Verification."""

from statistics import mean

import pytest

from relcheck.core.statuses import Inconclusive, require, trust
from relcheck.probes import judge, plots, resources
from relcheck.probes.loadtest import breaking_point, required_capacity

pytestmark = pytest.mark.performance
CLOSED_LOOP = (
    "closed-loop generator: a slow answer delays that user's next request, so latencies under "
    "overload are understated (coordinated omission); set performance.load.rate for constant-rate mode"
)


@pytest.mark.item("Performance Verification", "Load testing completed")
def test_load_testing_completed(load_run, performance, evidence):
    run, plan = load_run, performance.load
    evidence.kv(
        "Plan and outcome",
        {
            "users (planned / reached)": f"{plan.users} / {run.max_users}",
            "duration (planned / measured)": f"{plan.duration_s:g} s / {run.duration_s:.1f} s "
            f"(warm-up {plan.warmup_s:g} s)",
            "requests (minimum / made)": f"{plan.min_requests} / {run.total().count}",
            "mode": f"constant rate {plan.rate:g}/s per user" if plan.rate else CLOSED_LOOP,
            "generators": f"{run.workers_reporting} locust workers" if run.workers_reporting else "one locust process",
        },
    )
    assert not run.error, run.error
    evidence.kv("Generator", run.generator_facts(performance.processes, performance.generator_cpu_limit))
    trust(run.distrust(performance.generator_cpu_limit))
    evidence.table("Per route (exact latencies, HDR histogram)", *run.route_table())
    plot = plots.timeline(run, f"load: {plan.users} users")
    if plot:
        evidence.image("Throughput and latency over time", plot)
    assert run.max_users >= plan.users, f"reached {run.max_users} of {plan.users} planned users"
    assert run.duration_s >= plan.min_duration_ratio * plan.duration_s, (
        f"ran {run.duration_s:.1f} s of {plan.duration_s:g} s planned"
    )
    assert run.total().count >= plan.min_requests, f"{run.total().count} requests, fewer than {plan.min_requests}"


@pytest.mark.item("Performance Verification", "Stress testing completed")
def test_stress_testing_completed(stress_run, previous_capacity, relcheck_config, performance, evidence):
    plan = performance.stress
    assert not stress_run.error, stress_run.error
    evidence.kv("Generator", stress_run.generator_facts(performance.processes, performance.generator_cpu_limit))
    trust(stress_run.distrust(performance.generator_cpu_limit))
    steps = stress_run.steps
    require(steps, "the stress run recorded no steps")
    require(
        any(s.count for s in stress_run.series),
        "no request was answered during the stress run: the scenario sent none or the service answered none",
    )
    capacity, held, broke = breaking_point(steps, plan.p95_ms, plan.error_budget)
    evidence.table(
        "Ramp",
        ["users", "req/s", "p95", "errors", "SLA and error budget held"],
        [(s.users, f"{s.rps:.1f}", s.p95_text, f"{s.error_ratio:.2%}", "yes" if s in held else "NO") for s in steps],
    )
    evidence.kv(
        "Breaking point",
        {
            "capacity (highest req/s with SLA held)": f"{capacity:.1f}",
            "broke at": f"{broke.users} users ({broke.rps:.1f} req/s, p95 {broke.p95_text})"
            if broke
            else f"not reached up to {steps[-1].users} users",
            "SLA": f"p95 <= {plan.p95_ms:g} ms, errors <= {plan.error_budget:.1%}",
            "previous release's capacity": f"{previous_capacity:.1f} req/s" if previous_capacity else "not measured",
        },
    )
    plot = plots.timeline(stress_run, "stress ramp")
    if plot:
        evidence.image("Stress ramp", plot)
    required, source = required_capacity(
        plan.required_rps, plan.capacity_tolerance, relcheck_config.release.previous_version, previous_capacity
    )
    evidence.kv("Requirement", {"required": f"{required:.1f} req/s", "from": source})
    assert capacity >= required, (
        f"capacity {capacity:.1f} req/s is below the required {required:.1f} req/s ({source})"
        + (f" (broke at {broke.users} users)" if broke else "")
    )


@pytest.mark.item("Performance Verification", "Performance benchmarks met")
def test_performance_benchmarks(benchmark, performance, evidence):
    cfg = performance.baseline
    evidence.kv(
        "Comparison",
        {
            "baseline": benchmark.baseline,
            "test": "Mann-Whitney U, one-sided (slower?)",
            "confidence": cfg.confidence,
            "warn above": f"x{cfg.allowed_increase:g} median",
            "fail above": f"x{cfg.critical_increase:g} median",
            "inconclusive": f"no significant slowdown, but the {cfg.confidence:g} interval of the ratio reaches "
            f"above x{cfg.allowed_increase:g}",
            "verdict": benchmark.verdict,
        },
    )
    evidence.table(
        "Per route",
        [
            "route",
            "baseline n",
            "this n",
            "baseline p50 ms",
            "this p50 ms",
            "ratio",
            "ratio interval",
            "p-value",
            "verdict",
        ],
        [
            (
                c.route,
                c.baseline_n,
                c.current_n,
                f"{c.baseline_median:.2f}",
                f"{c.current_median:.2f}",
                f"{c.ratio:.3f}",
                f"{c.ratio_low:.3f}..{c.ratio_high:.3f}",
                f"{c.p_value:.3g}",
                c.verdict,
            )
            for c in benchmark.comparisons
        ],
    )
    assert not benchmark.run.error, benchmark.run.error
    evidence.kv("Generator", benchmark.run.generator_facts(performance.processes, performance.generator_cpu_limit))
    trust(benchmark.run.distrust(performance.generator_cpu_limit))  # a saturated run in either mode: inconclusive
    worse = [c for c in benchmark.comparisons if c.verdict in ("warn", "fail")]
    assert benchmark.verdict != "fail", "slower than the baseline: " + ", ".join(
        f"{c.route} x{c.ratio:.2f}" for c in worse if c.verdict == "fail"
    )
    unclear = ", ".join(
        f"{c.route} ratio {c.ratio_low:.2f}..{c.ratio_high:.2f}"
        for c in benchmark.comparisons
        if c.verdict == "inconclusive"
    )
    if benchmark.verdict == "inconclusive":  # a critical route (all, unless performance.baseline.critical_routes)
        raise Inconclusive(f"too noisy to tell a slowdown beyond x{cfg.allowed_increase:g} from none: {unclear}")
    if unclear:
        evidence.warn(f"non-critical routes too noisy to compare: {unclear}")
    if worse and benchmark.verdict == "warn":
        evidence.warn(
            "slower than the baseline, within the critical limit: "
            + ", ".join(f"{c.route} x{c.ratio:.2f}" for c in worse)
        )


@pytest.mark.item("Performance Verification", "Resource utilization within limits")
def test_resource_utilization(load_run, performance, evidence):
    limits, samples = performance.resources, load_run.resources
    require(not load_run.error, f"the load run failed: {load_run.error}")
    require(load_run.total().count > 0, "the load run made no requests: resource use under load is not measured")
    require(
        samples.service_cpu and samples.service_rss_mb,
        f"no resource samples of the service ({'; '.join(samples.problems) or 'no probe'})",
    )
    cpu = mean(samples.service_cpu) if samples.service_cpu else float("nan")
    rss = max(samples.service_rss_mb, default=float("nan"))
    conns = max(samples.db_connections, default=None)
    growth = resources.memory_growth(samples, load_run.measured_from, load_run.finished, load_run.total().count)
    per_1000 = limits.memory_growth_mb_per_1000_requests
    evidence.kv(
        "During the load run",
        {
            "source": samples.source,
            "samples": len(samples.service_cpu),
            "service CPU (mean, % of a core)": f"{cpu:.1f} (limit {limits.cpu_percent:g})",
            "service memory (peak)": f"{rss:.0f} MB (limit {limits.memory_mb:g})",
            "service memory growth after the warm-up": f"{growth} (limit {per_1000:g} MB per 1000 requests)",
            "database connections (peak)": f"{conns} (limit {limits.db_connections})",
            "probe problems": "; ".join(samples.problems) or "none",
        },
    )
    problems = []
    if cpu > limits.cpu_percent:
        problems.append(f"service CPU {cpu:.1f} % > {limits.cpu_percent:g} %")
    if rss > limits.memory_mb:
        problems.append(f"service memory {rss:.0f} MB > {limits.memory_mb:g} MB")
    if growth.mb_per_1000_requests > per_1000:
        problems.append(f"service memory grew {growth.mb_per_1000_requests:.1f} MB per 1000 requests > {per_1000:g}")
    if conns is not None and conns > limits.db_connections:
        problems.append(f"database connections {conns} > {limits.db_connections}")
    assert not problems, "; ".join(problems)
    require(conns is not None, "no samples of the database connections: that limit is not verified")
    require(not growth.unjudged, growth.unjudged)


@pytest.mark.item("Performance Verification", "Response times within SLA")
def test_response_times_within_sla(load_run, performance, evidence):
    assert not load_run.error, load_run.error
    evidence.kv("Generator", load_run.generator_facts(performance.processes, performance.generator_cpu_limit))
    trust(load_run.distrust(performance.generator_cpu_limit))
    sla = performance.sla
    routes = sorted(set(load_run.routes) | set(sla.routes))
    require(routes, "the load run measured no routes")
    rows, broken = [], []
    for route in routes:
        stats = load_run.routes.get(route)
        for text in sla.routes.get(route, sla.default):
            rule = judge.threshold(text)
            measured = rule.measure(stats) if stats else float("nan")
            ok = rule.holds(measured)
            rows.append((route, text, "no samples" if stats is None else f"{measured:.1f} ms", "yes" if ok else "NO"))
            if not ok:
                broken.append(f"{route} {text} (measured {measured:.1f} ms)" if stats else f"{route}: no samples")
    evidence.table("Thresholds", ["route", "threshold", "measured", "held"], rows)
    found = f"{len(broken)} threshold(s) broken: " + "; ".join(broken[:4])
    contended = load_run.resources.contended(performance.max_other_cpu_percent)
    others, limit = load_run.resources.others_median, performance.max_other_cpu_percent
    if others is not None:
        evidence.kv("Host", {"other processes' share of its CPU (median)": f"{others:.0f} % (limit {limit:g} %)"})
    unsampled = [b for b in broken if b.endswith(": no samples")]
    assert not unsampled, found  # no latency at all: no contention explains that
    require(not (broken and contended), f"{found}, but {contended}")
    assert not broken, found


@pytest.mark.item("Performance Verification", "Error rates acceptable")
def test_error_rates_acceptable(load_run, performance, evidence):
    assert not load_run.error, load_run.error
    sla, total = performance.sla, load_run.total()
    require(total.count > 0, "the load run made no requests: no error rate to judge")
    budgets = [(name, s, sla.route_error_budget) for name, s in sorted(load_run.routes.items())]
    evidence.table(
        "Error ratio per route (a ratio above its budget fails)",
        ["route", "requests", "failures", "ratio", "budget", "within"],
        [
            (
                name,
                s.count,
                s.failures,
                f"{s.error_ratio:.2%}",
                f"{budget:.1%}",
                "NO" if s.error_ratio > budget else "yes",
            )
            for name, s, budget in budgets + [("total", total, sla.error_budget)]
        ],
    )
    evidence.table(
        "Most frequent errors", ["error", "count"], sorted(load_run.errors.items(), key=lambda e: -e[1])[:10]
    )
    over = [
        f"{name} {s.error_ratio:.1%}"
        for name, s in sorted(load_run.routes.items())
        if s.error_ratio > sla.route_error_budget
    ]
    assert total.error_ratio <= sla.error_budget, (
        f"error ratio {total.error_ratio:.2%} exceeds the budget {sla.error_budget:.1%}"
        + (f" (routes over {sla.route_error_budget:.1%}: {', '.join(over)})" if over else "")
    )
    assert not over, f"route(s) over the error budget of {sla.route_error_budget:.1%}: {', '.join(over)}"
