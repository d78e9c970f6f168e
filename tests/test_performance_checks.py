"""Performance Verification: pass on the healthy service (healthy_run: embedded, with the previous release measured
beside it), fail with the latency, error-rate, memory and capacity fault switches, and refuse to judge when the
numbers cannot be trusted."""

import json
import re
from types import SimpleNamespace

import pytest
from hdrh.histogram import HdrHistogram

from checks import test_performance as performance_checks
from conftest import LATENCY_FAULT_MS, REPO
from relcheck.core import records
from relcheck.core.config import Resources, Sla, Stress, Workers
from relcheck.core.evidence import Evidence
from relcheck.probes import loadtest, resources
from relcheck.run import history

PERFORMANCE = [
    "test_load_testing_completed",
    "test_stress_testing_completed",
    "test_performance_benchmarks",
    "test_resource_utilization",
    "test_response_times_within_sla",
    "test_error_rates_acceptable",
]


NOISE = "non-critical routes too noisy to compare"  # a warning on a busy machine, by design; never a pass or fail


def passed(run, check: str) -> bool:
    """Passed, or (the benchmark) warned only that a non-critical route was too noisy to compare on this machine."""
    status, reason = run.statuses()[check]
    noisy = check == "test_performance_benchmarks" and status == "warn" and reason.startswith(NOISE)
    return status == "pass" or noisy


@pytest.mark.parametrize("check", PERFORMANCE)
def test_passes_on_the_healthy_reference_service(healthy_run, check):
    assert passed(healthy_run, check), healthy_run.reason(check)


def test_the_benchmark_measured_the_previous_release_side_by_side(healthy_run):
    facts = healthy_run.facts("test_performance_benchmarks", "Comparison")
    assert facts["baseline"].startswith("1.0.0 (v1.0.0) measured side by side (")
    assert " of 2 looks of 7.5 s, judged at p < " in facts["baseline"]
    assert passed(healthy_run, "test_performance_benchmarks") and facts["verdict"] in ("pass", "warn")
    resources = healthy_run.facts("test_resource_utilization", "During the load run")
    assert resources["source"].startswith("psutil, pid")


def seed_history(bench, target, version="1.0.0"):
    """A real load run against a real service, kept as `version`'s record in the bench's results history."""
    result = loadtest.run(
        "load",
        REPO / "load" / "load.py",
        host=target.base_url,
        users=10,
        spawn_rate=10,
        run_time_s=8,
        env={"RELCHECK_TOKENS": json.dumps(target.http.tokens), "RELCHECK_WARMUP_S": "1"},
        allowed_hosts=["127.0.0.1"],
    )
    assert result.routes, result.error
    history.save_load(bench.tmp / "reports", "kundli-service", version, result)


@pytest.mark.parametrize(
    "scale",
    [{"processes": 2}, {"workers": Workers(count=2)}, {"workers": Workers(count=2, command_prefix=["sh", "-c"])}],
    ids=["--processes 2", "master and 2 workers", "workers through a command prefix"],
)
def test_scaled_out_runs_merge_every_worker_into_one_exact_result(healthy, scale):
    tokens = {"RELCHECK_TOKENS": json.dumps(healthy.http.tokens)}
    result = loadtest.run(
        "smoke",
        REPO / "load" / "smoke.py",
        host=healthy.base_url,
        users=4,
        spawn_rate=4,
        run_time_s=3,
        env=tokens,
        allowed_hosts=["127.0.0.1"],
        **scale,
    )
    assert not result.error and result.returncode == 0, result.output_tail
    assert result.workers_reporting == 2 and result.max_users == 4
    assert result.total().count == sum(r.count for r in result.routes.values()) > 0
    assert len(result.generator_cpu) >= 4  # a CPU sample per second from each worker


def test_latency_errors_and_memory_break_their_checks(bench, faulty, healthy):
    target = faulty(
        latency={"route": "GET /v1/kundli/{chart_id}", "ms": LATENCY_FAULT_MS}, error_rate=0.2, memory_hog_mb=450
    )
    seed_history(bench, healthy)
    checked = bench.run(bench.config(target=target), "-m", "performance", "-k", "not stress")
    assert checked.status("test_load_testing_completed") == "pass"
    assert checked.status("test_response_times_within_sla") == "fail"
    reason = checked.reason("test_response_times_within_sla")
    assert reason.startswith("1 threshold(s) broken: GET /v1/kundli/{chart_id} p(95) < 1000ms (measured ")
    assert float(reason.split("measured ")[1].split(" ms")[0]) >= LATENCY_FAULT_MS
    assert checked.status("test_error_rates_acceptable") == "fail"
    assert "exceeds the budget 1.0%" in checked.reason("test_error_rates_acceptable")
    assert checked.status("test_resource_utilization") == "fail"
    assert "service memory" in checked.reason("test_resource_utilization")
    assert checked.status("test_performance_benchmarks") == "fail", checked.reason("test_performance_benchmarks")
    assert "GET /v1/kundli/{chart_id} x" in checked.reason("test_performance_benchmarks")
    assert (records.history_dir(bench.tmp / "reports", "kundli-service", "1.1.0") / "load.json").is_file()


def test_stress_finds_the_capacity_limit(bench, faulty):
    target = faulty(capacity={"concurrency": 2, "service_ms": 50})  # a designed ceiling of 40 req/s
    checked = bench.run(bench.config({"performance": {"stress": {"step_s": 3}}}, target=target), "-k", "stress")
    assert checked.status("test_stress_testing_completed") == "fail", checked.reason("test_stress_testing_completed")
    reason = checked.reason("test_stress_testing_completed")
    capacity = float(reason.split("capacity ")[1].split(" req/s")[0])
    assert 30 <= capacity <= 50 and "below the required 50.0 req/s (performance.stress.required_rps)" in reason


def without_required_rps(config):
    """The config with no stated capacity requirement (performance.stress.required_rps unset)."""
    config.write_text(re.sub(r"^required_rps = .*\n", "", config.read_text(), flags=re.M))
    return config


def release(version: str, previous: str) -> dict:
    return {"release": {"version": version, "previous_version": previous}}


def test_stress_is_judged_against_the_previous_release_capacity_never_against_none(bench, healthy, faulty):
    reports = bench.tmp / "reports"
    first = bench.run(without_required_rps(bench.config(release("1.0.0", "0.9.0"), target=healthy)), "-k", "stress")
    assert first.status("test_stress_testing_completed") == "not verified"
    assert first.reason("test_stress_testing_completed").startswith(
        "no capacity requirement: set performance.stress.required_rps (the results history has no measured capacity "
        "of the previous release 0.9.0)"
    )
    measured = history.stress_capacity(reports, "kundli-service", "1.0.0")  # kept for the next release
    assert measured and measured > 50, measured
    target = faulty(capacity={"concurrency": 2, "service_ms": 50})  # a designed ceiling of 40 req/s
    halved = bench.run(without_required_rps(bench.config(release("1.1.0", "1.0.0"), target=target)), "-k", "stress")
    assert halved.status("test_stress_testing_completed") == "fail", halved.reason("test_stress_testing_completed")
    assert f"below the required {0.8 * measured:.1f} req/s (0.8 x 1.0.0's measured {measured:.1f} req/s" in (
        halved.reason("test_stress_testing_completed")
    )


def test_a_saturated_generator_is_inconclusive_not_a_failure_nor_a_baseline(bench, healthy):
    seed_history(bench, healthy)
    config = bench.config({"performance": {"generator_cpu_limit": 0.1}}, target=healthy)
    checked = bench.run(config, "-k", "load_testing or response_times or benchmarks or stress")
    for check in PERFORMANCE[:3] + ["test_response_times_within_sla"]:
        assert checked.status(check) == "not verified"
        assert checked.reason(check).startswith("generator saturated: CPU p90"), checked.reason(check)
    saved = records.history_dir(bench.tmp / "reports", "kundli-service", "1.1.0")
    assert not (saved / "load.json").exists() and not (saved / "stress.json").exists()


def test_a_side_by_side_run_stops_at_the_first_look_that_decides(bench):
    """A release far slower than the previous one fails at an early look (the A/B run does not go on to its end)."""
    slow = {"embedded": {"faults": {"latency": {"route": "GET /v1/kundli/{chart_id}", "ms": 300}}}}
    performance = {"baseline": {"mode": "previous-release", "duration_s": 16, "looks": 4}}
    checked = bench.run(bench.config({**slow, "performance": performance}), "-k", "benchmarks")
    assert checked.status("test_performance_benchmarks") == "fail", checked.reason("test_performance_benchmarks")
    assert "GET /v1/kundli/{chart_id} x" in checked.reason("test_performance_benchmarks")
    facts = checked.facts("test_performance_benchmarks", "Comparison")
    looked = facts["baseline"].split("measured side by side (")[1]
    assert looked.split(" of 4 looks of 4 s, judged at p < ")[0] in ("1", "2", "3"), facts["baseline"]


def test_a_saturated_side_by_side_run_is_inconclusive_and_not_kept_as_the_baseline(bench):
    performance = {"generator_cpu_limit": 0.1, "baseline": {"mode": "previous-release", "duration_s": 6}}
    checked = bench.run(bench.config({"performance": performance}), "-k", "benchmarks")
    assert checked.status("test_performance_benchmarks") == "not verified"
    assert checked.reason("test_performance_benchmarks").startswith("generator saturated: CPU p90")
    assert not records.history_dir(bench.tmp / "reports", "kundli-service", "1.0.0").exists()


def chart_requests(target) -> float:
    """Requests the service counted on its chart routes (its kundli_http_requests counter)."""
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(target.http.get("/metrics").text)
    return sum(
        s.value
        for f in families
        for s in f.samples
        if s.name == "kundli_http_requests_total" and s.labels.get("route", "").startswith("/v1/kundli")
    )


def test_load_is_refused_outside_the_allow_list(bench, healthy):
    before = chart_requests(healthy)
    config = bench.config({"target": {"allowed_hosts": ["load.example.invalid"]}}, target=healthy)
    checked = bench.run(config, "-k", "load_testing")
    assert checked.status("test_load_testing_completed") == "not verified"
    assert (
        checked.reason("test_load_testing_completed")
        == "load refused: 127.0.0.1 is not an allowed load target (target.allowed_hosts: load.example.invalid)"
    )
    assert chart_requests(healthy) == before  # no load request reached the service


def test_zero_samples_leave_the_error_rate_not_verified(bench, healthy, tmp_path):
    idle = tmp_path / "idle.py"
    idle.write_text(
        "from locust import User, constant, task\nimport relcheck.probes.locustrec\n\n\n"
        "class Idle(User):\n    wait_time = constant(1)\n\n"
        "    @task\n    def nothing(self):\n        pass\n"
    )
    config = bench.config({"performance": {"load": {"locustfile": str(idle)}}}, target=healthy)
    checked = bench.run(config, "-k", "error_rates or load_testing or resource_utilization")
    assert checked.status("test_error_rates_acceptable") == "not verified"  # no data is not a finding
    assert checked.reason("test_error_rates_acceptable") == "the load run made no requests: no error rate to judge"
    assert checked.reason("test_load_testing_completed") == "0 requests, fewer than 50"
    assert checked.status("test_resource_utilization") == "not verified"  # an idle service is not a pass
    assert checked.reason("test_resource_utilization") == (
        "the load run made no requests: resource use under load is not measured"
    )


def test_benchmark_needs_a_baseline(bench, healthy):
    checked = bench.run(bench.config(target=healthy), "-k", "benchmarks")
    assert checked.status("test_performance_benchmarks") == "not verified"
    assert "no results history for kundli-service 1.0.0" in checked.reason("test_performance_benchmarks")
    config = bench.config({"performance": {"baseline": {"mode": "previous-release"}}}, target=healthy)
    config.write_text(config.read_text().replace('mode = "history"', 'mode = "previous-release"'))
    checked = bench.run(config, "-k", "benchmarks")
    assert "needs the embedded target" in checked.reason("test_performance_benchmarks")


def test_a_locust_run_that_exits_non_zero_is_an_error_even_with_a_result(healthy, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from locust import HttpUser, constant, events, task\nimport relcheck.probes.locustrec\n\n\n"
        "class Reader(HttpUser):\n    wait_time = constant(0.2)\n\n"
        "    @task\n    def health(self):\n        self.client.get('/health')\n\n\n"
        "@events.quitting.add_listener\ndef crash(environment, **kwargs):\n    environment.process_exit_code = 3\n"
    )
    result = loadtest.run(
        "smoke", broken, host=healthy.base_url, users=1, spawn_rate=1, run_time_s=2, env={}, allowed_hosts=["127.0.0.1"]
    )
    assert result.returncode == 3
    assert result.error.startswith("locust did not finish cleanly (exit 3)")


def test_no_generator_cpu_samples_is_inconclusive():
    from relcheck.core.statuses import Inconclusive, trust

    run = loadtest.LoadResult("load", ["python", "-m", "locust"], 0, "")
    with pytest.raises(Inconclusive, match="no CPU samples of the load generator"):
        trust(run.distrust(limit=90))


def sampled(memory_mb: list[float], every_s: float = 0.5, since: float = 1000.0) -> loadtest.ResourceSamples:
    """Memory samples taken every `every_s` seconds from `since` (epoch seconds)."""
    samples = loadtest.ResourceSamples(service_rss_mb=memory_mb)
    samples.service_rss_at = [since + n * every_s for n in range(len(memory_mb))]
    return samples


def test_memory_growth_is_judged_after_the_warm_up_and_robust_to_a_jump():
    warm_up = [60.0, 70.0, 80.0, 85.0]  # caches filling: before the measured window (t < 1002)
    steady = [90.0] * 10 + [98.0] + [90.0] * 9  # one allocator jump and back
    growth = resources.memory_growth(sampled(warm_up + steady), 1002.0, 1012.0, 2000)
    assert (growth.mb_per_1000_requests, growth.samples, growth.unjudged) == (0.0, 20, "")
    assert growth.mb_per_1000_requests <= Resources().memory_growth_mb_per_1000_requests


def test_a_leak_under_the_peak_limit_is_measured_per_request():
    leak = [90.0 + 2.5 * n for n in range(21)]  # 5 MB/s for 10 s while serving 1000 requests: 50 KiB each
    growth = resources.memory_growth(sampled(leak), 1000.0, 1010.0, 1000)
    assert round(growth.mb_per_1000_requests, 6) == 50.0 and max(leak) < Resources().memory_mb
    assert growth.mb_per_1000_requests > Resources().memory_growth_mb_per_1000_requests


def test_too_few_memory_samples_give_no_growth_to_judge():
    growth = resources.memory_growth(sampled([90.0] * 20), 1000.0, 1003.0, 500)
    assert growth.unjudged.startswith("7 memory samples and 500 requests after the warm-up: too few to judge")
    assert growth.mb_per_1000_requests != growth.mb_per_1000_requests  # nan: never under a limit


def load_with_failures(**routes: tuple[int, int]) -> loadtest.LoadResult:
    """A finished load run whose routes made (requests, failures)."""
    run = loadtest.LoadResult("load", ["python", "-m", "locust"], 0, "")
    run.routes = {
        name: loadtest.RouteStats(name, count, failures, HdrHistogram(1, 120_000_000, 3), [])
        for name, (count, failures) in routes.items()
    }
    return run


def test_a_route_failing_2_percent_breaks_the_error_budget_while_the_total_holds():
    run = load_with_failures(read=(1000, 20), create=(2000, 5), health=(1000, 0))  # total 0.6 %
    with pytest.raises(AssertionError, match=r"route\(s\) over the error budget of 1.0%: read 2.0%"):
        performance_checks.test_error_rates_acceptable(run, SimpleNamespace(sla=Sla()), Evidence())
    performance_checks.test_error_rates_acceptable(
        load_with_failures(read=(1000, 10), create=(2000, 5)), SimpleNamespace(sla=Sla()), Evidence()
    )  # 1.0 % on a route is within its budget


def stress_answering(*steps: tuple[int, int]) -> loadtest.LoadResult:
    """A stress run whose steps (users, requests answered after the step's warm-up) are 3 s each; the service
    answered two requests during the first step's warm-up."""
    run = loadtest.LoadResult("stress", ["python", "-m", "locust"], 0, "", generator_cpu=[20.0])
    run.steps = [loadtest.Step(users, 3 * n, 3 * n + 3, count, 0, 40.0) for n, (users, count) in enumerate(steps)]
    run.series = [loadtest.Second(0, steps[0][0], 2, 0, HdrHistogram(1, 120_000_000, 3), [20.0])]
    return run


def judge_stress(run: loadtest.LoadResult, previous_capacity: float) -> None:
    performance = SimpleNamespace(stress=Stress(locustfile="stress.py"), processes=1, generator_cpu_limit=90)
    config = SimpleNamespace(release=SimpleNamespace(previous_version="1.0.0"))
    performance_checks.test_stress_testing_completed(run, previous_capacity, config, performance, Evidence())


def test_a_stress_step_that_answers_nothing_is_where_the_service_broke():
    with pytest.raises(AssertionError, match=r"capacity 0.0 req/s is below the required 80.0 .* at 4 users"):
        judge_stress(stress_answering((4, 0), (8, 0)), previous_capacity=100.0)
    judge_stress(stress_answering((4, 300), (8, 0)), previous_capacity=100.0)  # 100 req/s held at 4 users


def test_other_processes_cpu_is_measured_apart_from_the_runs_own_and_makes_a_broken_sla_not_verified():
    """A process burning a core beside the service: counted as another process's CPU unless it is one of the run's
    own; a median share above performance.max_other_cpu_percent explains a broken SLA (not verified), below it not."""
    import subprocess
    import sys
    import time

    import psutil

    from relcheck.core.config import Performance
    from relcheck.target.service import wait_until

    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        process = psutil.Process(burner.pid)
        started, start = time.monotonic(), sum(process.cpu_times()[:2])
        everyone, ours = resources.OthersCpu([]), resources.OthersCpu([burner.pid])
        wait_until(lambda: sum(process.cpu_times()[:2]) - start >= 0.5, 30)
        counted, excluded = everyone.sample(), ours.sample()
        burned, elapsed = sum(process.cpu_times()[:2]) - start, time.monotonic() - started
    finally:
        burner.kill()
        burner.wait()
    share = 100 * burned / (elapsed * (psutil.cpu_count() or 1))  # the burner's share of the host over the interval
    assert counted - excluded >= 0.5 * share, (counted, excluded, share)
    limit = Performance.model_fields["max_other_cpu_percent"].default
    busy = loadtest.ResourceSamples(others_cpu=[80.0, 90.0, 85.0])
    quiet = loadtest.ResourceSamples(others_cpu=[5.0, 3.0, 40.0])
    assert busy.contended(limit).startswith("other processes took 85 % of this host's CPU during the load run")
    assert quiet.contended(limit) == "" and loadtest.ResourceSamples().contended(limit) == ""
