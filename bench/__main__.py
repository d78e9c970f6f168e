"""python -m bench [--quick]: measure the suite's numbers against known truths, side by side, and print ratios.

- harness_rps_ratio: requests/s of a closed-loop scenario through the suite (exact-latency recorder on) divided by
  plain `locust --headless` (recorder off) on the same scenario and duration, runs alternated.
- p50_error_ms, p95_error_ms: a route with a fixed injected 50 ms delay, loaded lightly beside an undelayed
  instance at the same time; error = (delayed - undelayed) - 50 ms, at p50 and p95.
- stress_capacity_error_pct: the breaking point the stress ramp finds on the capacity-limit fault (K concurrent,
  fixed service time S: a designed ceiling of K/S req/s), relative to that ceiling.
- judge_detection_rate / judge_false_alarm_rate: the benchmark judge over many trials on real latency samples,
  with a +20 % shift and with none; judge_missed_as_pass_rate: shifted trials judged a pass (the false pass the
  interval rule exists to prevent), judge_*_inconclusive_rate: trials the judge could not decide. The busy_
  figures: the same on samples taken while a CPU hog (one spinning process per core) ran beside the load.
- rps_per_core: the generator's requests/s per fully used core on the cheapest route.
- recorder_share_of_generator_cpu_pct: the exact-latency recorder's CPU per request (timed in-process) times
  rps_per_core: its share of the generator's CPU, free of the machine noise the rps ratio carries.
Results are printed and written to reports/bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from statistics import mean, median

from relcheck.core import config
from relcheck.core.files import write_json
from relcheck.probes import judge, loadtest
from relcheck.target.embedded import EmbeddedRuntime

ROOT = Path(__file__).resolve().parent.parent
VERSION = ROOT / "bench" / "scenarios" / "version.py"
STRESS = ROOT / "load" / "stress.py"
LOOPBACK = ["127.0.0.1"]
GOALS = {
    "harness_rps_ratio": ">= 0.90",
    "p50_error_ms": "|x| <= 3",
    "p95_error_ms": "|x| <= 5",
    "stress_capacity_error_pct": "<= 15",
    "judge_detection_rate": ">= 0.95",
    "judge_false_alarm_rate": "<= 0.05",
    "judge_missed_as_pass_rate": "<= 0.02",
    "judge_unshifted_inconclusive_rate": "(for the record)",
    "busy_judge_detection_rate": "(for the record)",
    "busy_judge_false_alarm_rate": "<= 0.05",
    "busy_judge_missed_as_pass_rate": "<= 0.02",
    "busy_judge_unshifted_inconclusive_rate": "(for the record)",
    "busy_fewest_judge_detection_rate": "(for the record)",
    "busy_fewest_judge_missed_as_pass_rate": "<= 0.02",
    "busy_fewest_judge_shifted_inconclusive_rate": "(for the record)",
    "busy_fewest_judge_false_alarm_rate": "<= 0.05",
    "busy_fewest_judge_unshifted_inconclusive_rate": "(for the record: the price of no false pass)",
    "rps_per_core": "(for the record)",
    "recorder_share_of_generator_cpu_pct": "(for the record)",
}


def plain_locust_rps(host: str, users: int, seconds: int) -> float:
    """requests/s of plain locust (relcheck's recorder off), from locust's own --json statistics."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(VERSION),
        "--headless",
        "--json",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        host,
        "--loglevel",
        "ERROR",
    ]
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        env={**__import__("os").environ, "RELCHECK_RECORDER": "off", "RELCHECK_ALLOWED_HOSTS": "127.0.0.1"},
    ).stdout
    stats = json.loads(out[out.index("[") :])
    return sum(s["num_requests"] for s in stats) / seconds


def suite_run(host: str, users: int, seconds: int, env: dict | None = None) -> loadtest.LoadResult:
    result = loadtest.run(
        "bench",
        VERSION,
        host=host,
        users=users,
        spawn_rate=users,
        run_time_s=seconds,
        env=env or {},
        allowed_hosts=LOOPBACK,
    )
    if result.error:
        raise SystemExit(f"bench: {result.error}")
    return result


def harness(healthy, users: int, seconds: int, rounds: int) -> tuple[dict, loadtest.LoadResult]:
    """Alternating rounds (plain, suite, plain, ...) so drift hits both; the ratio of the medians."""
    plain, suite, last = [], [], None
    for _ in range(rounds):
        plain.append(plain_locust_rps(healthy.base_url, users, seconds))
        last = suite_run(healthy.base_url, users, seconds)
        suite.append(sum(s.count for s in last.series) / seconds)
    cpu = mean(last.generator_cpu) if last.generator_cpu else float("nan")
    return {
        "harness_rps_ratio": median(suite) / median(plain),
        "suite_rps_rounds": suite,
        "plain_rps_rounds": plain,
        "round_ratios": [s / p for s, p in zip(suite, plain, strict=True)],
        "rps_per_core": last.rps() / (cpu / 100) if cpu else float("nan"),
        "generator_cpu_pct": cpu,
    }, last


def recorder_cost(samples: int = 100_000) -> dict:
    """The recorder's own CPU per request, timed in-process (noise-free, unlike the rps ratio)."""
    probe = (
        "import random, time\nfrom relcheck.probes import locustrec\nr = locustrec.Recorder()\n"
        f"values = [random.uniform(1, 50) for _ in range({samples})]\nt = time.perf_counter()\n"
        "for v in values: r.record('GET /version', v, False)\n"
        f"print((time.perf_counter() - t) / {samples} * 1e6)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return {"recorder_us_per_request": float(out.stdout.strip())}


def latency_error(healthy, delayed, seconds: int) -> dict:
    env = {
        "RELCHECK_BASELINE_HOST": healthy.base_url,
        "RELCHECK_CANDIDATE_HOST": delayed.base_url,
        "BENCH_WAIT_S": "0.05",
        "RELCHECK_WARMUP_S": "1",
    }
    result = loadtest.run(
        "latency", VERSION, host=None, users=4, spawn_rate=4, run_time_s=seconds, env=env, allowed_hosts=LOOPBACK
    )
    base, cand = result.baseline["GET /version"], result.routes["GET /version"]
    return {
        "p50_error_ms": cand.p(50) - base.p(50) - 50,
        "p95_error_ms": cand.p(95) - base.p(95) - 50,
        "delayed_p50_ms": cand.p(50),
        "undelayed_p50_ms": base.p(50),
        "samples": min(base.count, cand.count),
    }


def stress_capacity(limited, concurrency: int, service_ms: float, step_s: float) -> dict:
    ceiling = concurrency / (service_ms / 1000)
    env = {
        "RELCHECK_TOKENS": json.dumps(limited.http.tokens),
        "RELCHECK_STRESS_STEPS": "1,2,4,8,16,32",
        "RELCHECK_STRESS_STEP_S": str(step_s),
        "RELCHECK_STRESS_WARMUP_S": "1",
        "RELCHECK_STRESS_P95_MS": "250",
    }
    result = loadtest.run(
        "stress",
        STRESS,
        host=limited.base_url,
        users=0,
        spawn_rate=0,
        run_time_s=None,
        env=env,
        allowed_hosts=LOOPBACK,
        warmup_s=1,
    )
    capacity, _, broke = loadtest.breaking_point(result.steps, 250, 0.01)
    return {
        "stress_capacity_error_pct": abs(capacity - ceiling) / ceiling * 100,
        "designed_ceiling_rps": ceiling,
        "found_capacity_rps": capacity,
        "broke_at_users": broke.users if broke else None,
        "steps": [(s.users, round(s.rps, 1), round(s.p95_ms, 1)) for s in result.steps],
    }


def judge_rates(samples: list[float], trials: int, n: int, shift: float = 1.2, prefix: str = "") -> dict:
    rng = random.Random(20261125)
    cfg = config.load().performance.baseline

    def verdict(base: list[float], cur: list[float]) -> str:
        return judge.compare("r", base, cur, cfg.confidence, cfg.allowed_increase, cfg.critical_increase).verdict

    shifted = [
        verdict(rng.choices(samples, k=n), [x * shift for x in rng.choices(samples, k=n)]) for _ in range(trials)
    ]
    unshifted = [verdict(rng.choices(samples, k=n), rng.choices(samples, k=n)) for _ in range(trials)]
    return {
        f"{prefix}judge_detection_rate": sum(v in ("warn", "fail") for v in shifted) / trials,
        f"{prefix}judge_missed_as_pass_rate": shifted.count("pass") / trials,
        f"{prefix}judge_shifted_inconclusive_rate": shifted.count("inconclusive") / trials,
        f"{prefix}judge_false_alarm_rate": sum(v in ("warn", "fail") for v in unshifted) / trials,
        f"{prefix}judge_unshifted_inconclusive_rate": unshifted.count("inconclusive") / trials,
        f"{prefix}judge_trials": trials,
        f"{prefix}judge_samples_per_side": n,
    }


@contextmanager
def cpu_hog():
    """One spinning process per core beside the load: a busy, shared machine."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (under a minute)")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench.json"))
    args = parser.parse_args(argv)
    seconds, rounds, step_s, trials = (3, 2, 2.5, 100) if args.quick else (6, 7, 5, 300)
    started = time.monotonic()
    runtime = EmbeddedRuntime(config.load(), faults={})
    try:
        healthy = runtime.start()
        delayed = runtime.spawn({"latency": {"route": "GET /version", "ms": 50}})
        limited = runtime.spawn({"capacity": {"concurrency": 4, "service_ms": 50}})
        figures, suite = harness(healthy, 32, seconds, rounds)
        figures.update(latency_error(healthy, delayed, seconds + 2))
        figures.update(stress_capacity(limited, 4, 50, step_s))
        figures.update(judge_rates(suite.routes["GET /version"].samples, trials, 500))
        with cpu_hog():
            busy = suite_run(healthy.base_url, 32, seconds)
        busy_samples = busy.routes["GET /version"].samples
        figures.update(judge_rates(busy_samples, trials, 500, prefix="busy_"))
        few = config.load().performance.baseline.min_samples  # the fewest samples the check accepts
        figures.update(judge_rates(busy_samples, trials, few, prefix="busy_fewest_"))
    finally:
        runtime.stop()
    figures.update(recorder_cost())
    figures["recorder_share_of_generator_cpu_pct"] = figures["recorder_us_per_request"] * figures["rps_per_core"] / 1e4
    figures["seconds"] = time.monotonic() - started
    figures["mode"] = "quick" if args.quick else "full"
    print(f"{'figure':44} {'measured':>12}  goal")
    for name, goal in GOALS.items():
        print(f"{name:44} {figures[name]:>12.3f}  {goal}")
    print(f"(details in {args.out}; {figures['seconds']:.0f} s)")
    write_json(Path(args.out), figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
