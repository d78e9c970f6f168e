"""Run a locust scenario in a subprocess (locust's gevent monkey-patching stays out of pytest), bounded in users,
time and hosts, and read back the exact-latency result written by relcheck.locustrec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from hdrh.histogram import HdrHistogram

from relcheck.core.errors import ToolError
from relcheck.core.secrets import redact
from relcheck.core.statuses import NotVerified
from relcheck.target import remote
from relcheck.target.service import die_with_parent, free_port, stop_groups


def decode(encoded: str) -> HdrHistogram:
    return HdrHistogram.decode(encoded.encode())


@dataclass
class RouteStats:
    name: str
    count: int
    failures: int
    hdr: HdrHistogram
    samples: list[float]

    def p(self, percentile: float) -> float:
        """Latency at a percentile, milliseconds (exact to 3 significant digits)."""
        return self.hdr.get_value_at_percentile(percentile) / 1000 if self.count else float("nan")

    @property
    def max_ms(self) -> float:
        return self.hdr.get_max_value() / 1000 if self.count else float("nan")

    @property
    def error_ratio(self) -> float:
        return self.failures / self.count if self.count else float("nan")


@dataclass
class Second:
    at: int
    users: int
    count: int
    failures: int
    hdr: HdrHistogram
    cpu: list[float]


@dataclass
class Step:
    users: int
    start: float
    end: float
    count: int
    failures: int
    p95_ms: float

    @property
    def rps(self) -> float:
        return self.count / (self.end - self.start) if self.end > self.start else 0.0

    @property
    def error_ratio(self) -> float:
        return self.failures / self.count if self.count else float("nan")

    @property
    def p95_text(self) -> str:
        return f"{self.p95_ms:.1f} ms" if self.count else "none (no answer after the step's warm-up)"


@dataclass
class ResourceSamples:
    service_cpu: list[float] = field(default_factory=list)  # percent of one core
    service_rss_mb: list[float] = field(default_factory=list)
    service_rss_at: list[float] = field(default_factory=list)  # when each memory sample was taken (epoch s)
    db_connections: list[int] = field(default_factory=list)
    # the host's other processes' share of its CPU (percent of all CPUs) per sample: a service on this host only
    others_cpu: list[float] = field(default_factory=list)
    source: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def others_median(self) -> float | None:
        return sorted(self.others_cpu)[len(self.others_cpu) // 2] if self.others_cpu else None

    def contended(self, limit: float) -> str:
        """Why the service's latencies cannot be blamed on it ("" when they can): other processes of its host took
        more than limit % of the host's CPU over the run (the median sample) — the service waited for the CPU."""
        share = self.others_median
        if share is None or share <= limit:
            return ""
        return (
            f"other processes took {share:.0f} % of this host's CPU during the load run (median of "
            f"{len(self.others_cpu)} samples; performance.max_other_cpu_percent {limit:g}): the service competed with "
            "them for the CPU — measure on a host where nothing else runs"
        )

    def add_memory(self, mb: float) -> None:
        self.service_rss_mb.append(mb)
        self.service_rss_at.append(time.time())


@dataclass
class LoadResult:
    scenario: str
    command: list[str]
    returncode: int | None
    output_tail: str
    started: float = 0.0
    measured_from: float = 0.0
    finished: float = 0.0
    routes: dict[str, RouteStats] = field(default_factory=dict)
    baseline: dict[str, RouteStats] = field(default_factory=dict)
    series: list[Second] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    generator_cpu: list[float] = field(default_factory=list)
    workers_reporting: int = 0  # master/worker runs: the workers whose data was merged
    resources: ResourceSamples = field(default_factory=ResourceSamples)
    error: str = ""

    @property
    def duration_s(self) -> float:
        return self.finished - self.started

    @property
    def max_users(self) -> int:
        return max((s.users for s in self.series), default=0)

    def total(self, routes: dict[str, RouteStats] | None = None) -> RouteStats:
        routes = self.routes if routes is None else routes
        merged = HdrHistogram(1, 120_000_000, 3)
        for stats in routes.values():
            merged.add(stats.hdr)
        return RouteStats(
            "total",
            sum(r.count for r in routes.values()),
            sum(r.failures for r in routes.values()),
            merged,
            [x for r in routes.values() for x in r.samples],
        )

    @property
    def measured_s(self) -> float:
        """The window the route statistics cover (the run minus its warm-up)."""
        return self.finished - max(self.started, self.measured_from)

    def rps(self, stats: RouteStats | None = None) -> float:
        stats = stats or self.total()
        return stats.count / self.measured_s if self.measured_s > 0 else 0.0

    @property
    def generator_p90(self) -> float:
        samples = sorted(self.generator_cpu)
        return samples[int(0.9 * (len(samples) - 1))] if samples else float("nan")

    def saturated(self, limit: float) -> bool:
        """Generator saturation: the 90th percentile of its CPU samples above the limit."""
        return bool(self.generator_cpu) and self.generator_p90 > limit

    def generator_facts(self, processes, limit: float) -> dict:
        return {
            "command": " ".join(self.command[2:]),
            "processes": processes,
            "CPU p90": f"{self.generator_p90:.0f} %",
            "CPU limit": f"{limit:g} %",
        }

    def distrust(self, limit: float) -> str:
        """Why the numbers cannot be trusted (the generator's saturation unknown or reached), or ""."""
        if not self.generator_cpu:
            return "no CPU samples of the load generator: its saturation is unknown"
        if self.saturated(limit):
            return (
                f"generator saturated: CPU p90 {self.generator_p90:.0f} % > {limit:g} %; "
                f"add generator processes (performance.processes)"
            )
        return ""

    def route_table(self) -> tuple[list[str], list[tuple]]:
        """(headers, a row per route and the total): requests, failures, throughput and latency percentiles."""
        rows = [(name, *self._route_row(s)) for name, s in sorted(self.routes.items())]
        rows.append(("total", *self._route_row(self.total())))
        return ["route", "requests", "failures", "req/s", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "max ms"], rows

    def _route_row(self, s: RouteStats) -> tuple:
        latencies = [f"{s.p(p):.1f}" for p in (50, 90, 95, 99)]
        return (s.count, s.failures, f"{self.rps(s):.1f}", *latencies, f"{s.max_ms:.1f}")

    def trusted(self, limit: float) -> bool:
        """Finished without error, with a generator known not to be saturated: fit to be a later run's baseline."""
        return not self.error and bool(self.generator_cpu) and not self.saturated(limit)


def breaking_point(steps: list[Step], p95_ms: float, error_budget: float) -> tuple[float, list[Step], Step | None]:
    """(capacity: the highest throughput of a step that held the SLA and the error budget, those steps, the first
    step that did not)."""
    held = [s for s in steps if s.count and s.p95_ms <= p95_ms and s.error_ratio <= error_budget]
    broke = next((s for s in steps if s not in held), None)
    return max((s.rps for s in held), default=0.0), held, broke


def required_capacity(
    required_rps: float | None, tolerance: float, previous_version: str, previous_capacity: float | None
) -> tuple[float, str]:
    """(the req/s the stress run must reach, where that figure comes from): the configured requirement, else the
    previous release's measured capacity times the tolerance; with neither the capacity cannot be judged."""
    if required_rps:
        return required_rps, "performance.stress.required_rps"
    if not previous_capacity:
        raise NotVerified(
            "no capacity requirement: set performance.stress.required_rps (the results history has no measured "
            f"capacity of the previous release {previous_version or '(release.previous_version unset)'})"
        )
    return tolerance * previous_capacity, (
        f"{tolerance:g} x {previous_version}'s measured {previous_capacity:.1f} req/s "
        "(performance.stress.capacity_tolerance)"
    )


def in_window(second: int, start: float, end: float) -> bool:
    """A one-second bucket belongs to the window holding its middle."""
    return start <= second + 0.5 < end


def parse(data: dict, warmup_s: float) -> dict:
    """Route stats, per-second series and stress steps from a relcheck-load/1 document."""
    routes: dict[str, RouteStats] = {}
    baseline: dict[str, RouteStats] = {}
    for key, value in data.get("routes", {}).items():
        variant, _, name = key.rpartition("|")
        stats = RouteStats(name, value["count"], value["failures"], decode(value["hdr"]), value["samples"])
        (baseline if variant == "baseline" else routes)[name] = stats
    series = sorted(
        (
            Second(int(at), v.get("users", 0), v["count"], v["failures"], decode(v["hdr"]), v.get("cpu", []))
            for at, v in data.get("series", {}).items()
        ),
        key=lambda s: s.at,
    )
    steps = []
    for n, step in enumerate(data.get("steps", [])):
        start = step["start"] + warmup_s
        end = data["steps"][n + 1]["start"] if n + 1 < len(data["steps"]) else data.get("finished", start)
        inside = [s for s in series if in_window(s.at, start, end)]
        hdr = HdrHistogram(1, 120_000_000, 3)
        for second in inside:
            hdr.add(second.hdr)
        count = sum(s.count for s in inside)
        steps.append(
            Step(
                step["users"],
                inside[0].at if inside else start,
                inside[-1].at + 1 if inside else start,
                count,
                sum(s.failures for s in inside),
                hdr.get_value_at_percentile(95) / 1000 if count else 0.0,
            )
        )
    return {
        "routes": routes,
        "baseline": baseline,
        "series": series,
        "steps": steps,
        "errors": data.get("errors", {}),
        "generator_cpu": data.get("generator_cpu", []),
        "started": data.get("started", 0.0),
        "measured_from": data.get("measured_from", 0.0),
        "finished": data.get("finished", 0.0),
        "workers_reporting": data.get("workers_reporting", 0),
    }


def check_allowed(base_url: str, allowed_hosts: list[str]) -> None:
    host = urlsplit(base_url).hostname
    if host not in allowed_hosts:
        raise ToolError(
            f"load refused: {host} is not an allowed load target (target.allowed_hosts: {', '.join(allowed_hosts)})"
        )


class Sampler(threading.Thread):
    """Samples the service's CPU and memory and the database's connections while load runs."""

    def __init__(self, probe, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.probe, self.interval = probe, interval
        self.samples = ResourceSamples()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.probe(self.samples)
            except Exception as exc:  # a probe failing must not end the load run; it is reported instead
                message = redact(f"{type(exc).__name__}: {exc}")[:200]
                if message not in self.samples.problems:
                    self.samples.problems.append(message)

    def stop(self) -> ResourceSamples:
        self.stopping.set()
        self.join(5)
        return self.samples


def start_workers(workers, locustfile: Path, port: int, env: dict[str, str]) -> list[subprocess.Popen]:
    """Locust workers for a master on this host: here, or on load hosts through workers.command_prefix (with
    relcheck installed there); the scenario's RELCHECK_* settings (API tokens among them) travel on stdin."""
    python = workers.python or sys.executable
    command = [
        python,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--worker",
        "--master-host",
        workers.master_host,
        "--master-port",
        str(port),
        "--loglevel",
        "WARNING",
    ]
    stdin = None
    local_env: dict[str, str] | None = env
    if workers.command_prefix:  # one shell command line, as ssh runs it; the settings on stdin
        settings = {k: v for k, v in env.items() if k.startswith("RELCHECK_")}
        (command, stdin), local_env = remote.through(workers.command_prefix, command, settings), None
    started = []
    for _ in range(workers.count):
        worker = subprocess.Popen(
            command,
            env=local_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        if stdin and worker.stdin:
            worker.stdin.write(stdin)
            worker.stdin.close()
        started.append(worker)
    return started


def run(
    scenario: str,
    locustfile: Path,
    *,
    host: str | None,
    users: int,
    spawn_rate: float,
    run_time_s: float | None,
    env: dict,
    allowed_hosts: list[str],
    processes: int = 1,
    warmup_s: float = 0.0,
    probe=None,
    extra_args: list[str] | None = None,
    workers=None,
) -> LoadResult:
    """One bounded locust run; never raises for a failing run, only for a refused host. `processes` forks workers
    on this host; `workers` (config performance.workers) runs a master here and workers that connect to it."""
    for h in [host] + [env[k] for k in ("RELCHECK_BASELINE_HOST", "RELCHECK_CANDIDATE_HOST") if env.get(k)]:
        if h:
            check_allowed(h, allowed_hosts)
    with tempfile.TemporaryDirectory(prefix="relcheck-load-") as workdir:
        result_path = Path(workdir) / "result.json"
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(locustfile),
            "--headless",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--stop-timeout",
            "5",
            "--exit-code-on-error",
            "0",  # failed requests are data the checks judge; any other non-zero exit is a broken run
        ]
        if host:
            command += ["--host", host]
        if run_time_s:
            command += ["-u", str(users), "-r", str(spawn_rate), "-t", f"{int(run_time_s)}s"]
        if processes > 1:
            command += ["--processes", str(processes)]
        port = free_port(workers.master_bind_host) if workers else 0
        if workers:
            command += [
                "--master",
                "--expect-workers",
                str(workers.count),
                "--expect-workers-max-wait",
                f"{workers.connect_timeout_s:g}",
                "--master-bind-host",
                workers.master_bind_host,
                "--master-bind-port",
                str(port),
            ]
        command += extra_args or []
        child_env = {
            **os.environ,
            **env,
            "RELCHECK_LOAD_RESULT": str(result_path),
            "RELCHECK_ALLOWED_HOSTS": ",".join(allowed_hosts),
        }
        sampler = Sampler(probe) if probe else None
        if sampler:
            sampler.start()
        bound = (run_time_s or 600) + 60 + (workers.connect_timeout_s if workers else 0)
        master = subprocess.Popen(
            command,
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        started_workers = (
            start_workers(
                workers, locustfile, port, {**env, "RELCHECK_ALLOWED_HOSTS": child_env["RELCHECK_ALLOWED_HOSTS"]}
            )
            if workers
            else []
        )
        try:
            output, _ = master.communicate(timeout=bound)
            returncode = master.returncode
        except subprocess.TimeoutExpired:
            stop_groups([master])
            output = master.communicate()[0] + f"\nlocust did not stop within {bound:g}s and was killed"
            returncode = None
        finally:
            stop_groups([master, *started_workers])  # also on Ctrl-C: no locust outlives the run
        resources = sampler.stop() if sampler else ResourceSamples()
        result = LoadResult(
            scenario,
            command,
            returncode,
            redact(output[-3000:]),
            resources=resources,
        )
        lines = [line for line in output.strip().splitlines() if line.strip()]
        last = redact(lines[-1]) if lines else ""
        if not result_path.is_file():
            result.error = f"locust produced no result (exit {returncode}): {last}"
            return result
        if returncode != 0:
            result.error = f"locust did not finish cleanly (exit {returncode}): {last}; its partial result is not used"
            return result
        for key, value in parse(json.loads(result_path.read_text()), warmup_s).items():
            setattr(result, key, value)
        return result
