"""Inside locust (never imported by pytest: locust monkey-patches with gevent): record exact latencies.

Locust keeps response times in rounded buckets; this recorder keeps, per variant and route, an HDR histogram of
the exact times (microseconds, 3 significant digits), a bounded reservoir of raw samples for statistical tests,
and a per-second series (users, requests, failures, latency histogram, generator CPU). Workers ship their data to
the master with every report, so --processes N and master/worker runs give one merged result. The master (or the
single local process) writes it as JSON to $RELCHECK_LOAD_RESULT when locust quits.
"""

from __future__ import annotations

import json
import os
import random
import time
from urllib.parse import urlsplit

import gevent
import psutil
from hdrh.histogram import HdrHistogram
from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

LOWEST_US, HIGHEST_US, DIGITS = 1, 120_000_000, 3
RESERVOIR = int(os.environ.get("RELCHECK_LOAD_RESERVOIR", "20000"))
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


class Recorder:
    def __init__(self) -> None:
        self.routes: dict[str, dict] = {}  # "variant|name" -> {count, failures, hdr, samples, seen}
        self.series: dict[int, dict] = {}  # second -> {count, failures, hdr, users, cpu}
        self.errors: dict[str, int] = {}
        self.steps: list[dict] = []
        self.cpu: list[float] = []
        self.workers: set[str] = set()  # the master: client ids of the workers that reported
        self.started = time.time()
        self.measure_from = 0.0

    def route(self, key: str) -> dict:
        if key not in self.routes:
            self.routes[key] = {"count": 0, "failures": 0, "hdr": histogram(), "samples": [], "seen": 0}
        return self.routes[key]

    def second(self, at: float) -> dict:
        second = int(at)
        if second not in self.series:
            self.series[second] = {"count": 0, "failures": 0, "hdr": histogram(), "users": 0, "cpu": []}
        return self.series[second]

    def record(self, key: str, millis: float, failed: bool, error: str = "") -> None:
        micros = max(LOWEST_US, min(HIGHEST_US, int(round(millis * 1000))))
        now = time.time()
        bucket = self.second(now)
        bucket["count"] += 1
        bucket["failures"] += failed
        bucket["hdr"].record_value(micros)
        if error:
            self.errors[error] = self.errors.get(error, 0) + 1
        if now < self.measure_from:  # ramp-up: in the time series, not in the route statistics
            return
        entry = self.route(key)
        entry["count"] += 1
        entry["failures"] += failed
        entry["hdr"].record_value(micros)
        entry["seen"] += 1
        if len(entry["samples"]) < RESERVOIR:  # reservoir sampling (algorithm R)
            entry["samples"].append(millis)
        else:
            slot = random.randrange(entry["seen"])
            if slot < RESERVOIR:
                entry["samples"][slot] = millis

    # --- shipping between processes --------------------------------------------------------------------------
    def drain(self) -> dict:
        """Everything recorded since the last drain, serialised (a worker's report)."""
        data = {
            "routes": {k: {**v, "hdr": v["hdr"].encode().decode()} for k, v in self.routes.items()},
            "series": {str(s): {**v, "hdr": v["hdr"].encode().decode()} for s, v in self.series.items()},
            "errors": self.errors,
            "cpu": self.cpu,
        }
        self.routes, self.series, self.errors, self.cpu = {}, {}, {}, []
        return data

    def absorb(self, data: dict, worker: str = "") -> None:
        if data.get("routes"):
            self.workers.add(worker)
        for key, value in data.get("routes", {}).items():
            entry = self.route(key)
            entry["count"] += value["count"]
            entry["failures"] += value["failures"]
            entry["hdr"].add(HdrHistogram.decode(value["hdr"].encode()))
            room = max(0, RESERVOIR - len(entry["samples"]))
            entry["samples"].extend(value["samples"][:room])
            entry["seen"] += value["seen"]
        for second, value in data.get("series", {}).items():
            bucket = self.second(float(second))
            bucket["count"] += value["count"]
            bucket["failures"] += value["failures"]
            bucket["hdr"].add(HdrHistogram.decode(value["hdr"].encode()))
            bucket["cpu"].extend(value.get("cpu", []))
        for error, count in data.get("errors", {}).items():
            self.errors[error] = self.errors.get(error, 0) + count
        self.cpu.extend(data.get("cpu", []))

    def result(self, environment) -> dict:
        options = environment.parsed_options
        data = self.drain()
        return {
            "format": "relcheck-load/1",
            "started": self.started,
            "measured_from": self.measure_from,
            "finished": time.time(),
            "host": environment.host,
            "planned": {"users": getattr(options, "num_users", None), "run_time_s": getattr(options, "run_time", None)},
            "processes": getattr(options, "processes", None),
            "steps": self.steps,
            "workers_reporting": len(self.workers),
            "generator_cpu": data["cpu"],
            **{k: data[k] for k in ("routes", "series", "errors")},
        }


recorder = Recorder()


BASELINE_HOST = os.environ.get("RELCHECK_BASELINE_HOST", "")


def variant_of(url: str) -> str:
    """Requests to the baseline host (A/B comparisons) are kept apart from the candidate's."""
    return "baseline" if BASELINE_HOST and url.startswith(BASELINE_HOST) else ""


def allowed(host: str) -> bool:
    hosts = {h for h in os.environ.get("RELCHECK_ALLOWED_HOSTS", ",".join(sorted(LOOPBACK))).split(",") if h}
    return urlsplit(host or "").hostname in hosts


@events.init.add_listener
def on_init(environment, **kwargs) -> None:
    hosts = [environment.host] + [getattr(u, "host", None) for u in environment.user_classes]
    refused = sorted({h for h in hosts if h and not allowed(h)})
    if refused:
        raise SystemExit(
            f"relcheck: load refused: {', '.join(refused)} not in RELCHECK_ALLOWED_HOSTS "
            f"({os.environ.get('RELCHECK_ALLOWED_HOSTS', 'loopback')})"
        )
    if isinstance(environment.runner, MasterRunner):
        environment.events.worker_report.add_listener(
            lambda client_id, data: recorder.absorb(data.get("relcheck", {}), client_id)
        )
    else:
        gevent.spawn(sample_cpu)
    if isinstance(environment.runner, WorkerRunner):
        environment.events.report_to_master.add_listener(lambda client_id, data: data.update(relcheck=recorder.drain()))
    if not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(sample_users, environment)


@events.test_start.add_listener
def on_test_start(environment, **kwargs) -> None:
    """Route statistics leave out the first $RELCHECK_WARMUP_S seconds (users arriving, caches filling)."""
    recorder.started = time.time()
    recorder.measure_from = recorder.started + float(os.environ.get("RELCHECK_WARMUP_S", "0"))


def on_request(request_type, name, response_time, exception=None, url="", context=None, **kwargs) -> None:
    variant = variant_of(url or "")
    recorder.record(
        f"{variant}|{request_type} {name}" if variant else f"{request_type} {name}",
        response_time,
        exception is not None,
        f"{request_type} {name}: {exception}"[:200] if exception else "",
    )


if os.environ.get("RELCHECK_RECORDER", "on") != "off":  # "off": plain locust, for overhead benchmarks
    events.request.add_listener(on_request)


def sample_cpu() -> None:
    process = psutil.Process()
    process.cpu_percent()
    while True:
        gevent.sleep(1.0)
        usage = process.cpu_percent()
        recorder.cpu.append(usage)
        recorder.second(time.time())["cpu"].append(usage)


def sample_users(environment) -> None:
    while True:
        gevent.sleep(1.0)
        if environment.runner is not None:
            recorder.second(time.time())["users"] = environment.runner.user_count


@events.quitting.add_listener
def on_quitting(environment, **kwargs) -> None:
    path = os.environ.get("RELCHECK_LOAD_RESULT")
    if path and not isinstance(environment.runner, WorkerRunner):
        with open(path + ".partial", "w") as handle:
            json.dump(recorder.result(environment), handle)
        os.replace(path + ".partial", path)


def window(start: float, end: float) -> tuple[int, int, HdrHistogram]:
    """Requests, failures and latency histogram recorded in [start, end) (whole seconds)."""
    count = failures = 0
    merged = histogram()
    for second, bucket in recorder.series.items():
        if start <= second + 0.5 < end:  # a one-second bucket belongs to the window holding its middle
            count += bucket["count"]
            failures += bucket["failures"]
            merged.add(bucket["hdr"])
    return count, failures, merged


class StepLoadShape(LoadTestShape):
    """Step ramp: $RELCHECK_STRESS_STEPS users ("1,2,4,8"), each held $RELCHECK_STRESS_STEP_S seconds. Stops after
    the first step whose p95 exceeds $RELCHECK_STRESS_P95_MS or whose error ratio exceeds
    $RELCHECK_STRESS_ERROR_BUDGET (measured after $RELCHECK_STRESS_WARMUP_S of each step)."""

    def __init__(self) -> None:
        super().__init__()
        self.users = [int(u) for u in os.environ.get("RELCHECK_STRESS_STEPS", "1,2,4,8,16,32").split(",")]
        self.step_s = float(os.environ.get("RELCHECK_STRESS_STEP_S", "5"))
        self.warmup_s = float(os.environ.get("RELCHECK_STRESS_WARMUP_S", "1"))
        self.p95_ms = float(os.environ.get("RELCHECK_STRESS_P95_MS", "250"))
        self.error_budget = float(os.environ.get("RELCHECK_STRESS_ERROR_BUDGET", "0.01"))
        self.broken = False

    def tick(self):
        index = int(self.get_run_time() // self.step_s)
        if index >= len(self.users) or self.broken:
            return None
        if len(recorder.steps) <= index:
            if recorder.steps:
                self.broken = self.judge(recorder.steps[-1])
                if self.broken:
                    return None
            recorder.steps.append({"users": self.users[index], "start": time.time()})
        return self.users[index], max(self.users[index], 1) * 10

    def judge(self, step: dict) -> bool:
        """True when the finished step broke the SLA or the error budget, or answered nothing after its warm-up
        for longer than the SLA's p95 (each request in flight took longer: the ramp must stop there)."""
        measured_from = step["start"] + self.warmup_s
        count, failures, hdr = window(measured_from, time.time())
        if not count:
            return (time.time() - measured_from) * 1000 > self.p95_ms
        return hdr.get_value_at_percentile(95) / 1000 > self.p95_ms or failures / count > self.error_budget
