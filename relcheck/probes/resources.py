"""What the service uses while load runs: CPU and memory (psutil for a local process, the process_* metrics
for a remote one) and its database connections."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from scipy.stats import theilslopes

from relcheck.probes import metrics
from relcheck.probes.loadtest import ResourceSamples
from relcheck.target.target import Target

CONNECTIONS = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"


class OthersCpu:
    """The share of this host's CPU (percent of all its CPUs) the processes that are not the run's own used between
    two samples: relcheck's process tree (the load generator, the embedded service) and the embedded database's
    server are the run's; everything else competes with the service for the CPU."""

    def __init__(self, roots: list[int]) -> None:
        self.roots, self.cpus = roots, psutil.cpu_count() or 1
        self.last = (time.monotonic(), self.busy(), self.ours())

    @staticmethod
    def busy() -> float:
        times = psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    def ours(self) -> dict[int, float]:
        found: dict[int, float] = {}
        for root in self.roots:
            try:
                tree = [psutil.Process(root)]
                tree += tree[0].children(recursive=True)
            except psutil.Error:
                continue
            for process in tree:
                try:
                    times = process.cpu_times()
                    found[process.pid] = times.user + times.system
                except psutil.Error:
                    pass
        return found

    def sample(self) -> float:
        at, busy, ours = time.monotonic(), self.busy(), self.ours()
        last_at, last_busy, last_ours = self.last
        self.last = at, busy, ours
        own = sum(cpu - last_ours.get(pid, 0.0) for pid, cpu in ours.items())  # a new process: all of its CPU
        return max(0.0, 100 * (busy - last_busy - own) / (max(at - last_at, 1e-6) * self.cpus))


def own_roots(target: Target, service_pid: int) -> list[int]:
    """The run's own processes on this host: relcheck's (its children: the load generator and an embedded service),
    the service's, and the embedded database server (pgserver daemonizes it)."""
    roots = [os.getpid(), service_pid]
    pg = getattr(getattr(target, "runtime", None), "pg", None)
    pidfile = getattr(pg, "pgdata", Path("/nonexistent")) / "postmaster.pid"
    if pidfile.is_file():
        first = pidfile.read_text().split("\n", 1)[0].strip()
        roots += [int(first)] if first.isdigit() else []
    return roots


def probe(target: Target):
    """A function sampling the target into a ResourceSamples, one call per tick; for a service on this host also the
    other processes' share of its CPU."""
    pid = getattr(target.service, "pid", None)
    process = psutil.Process(pid) if pid and psutil.pid_exists(pid) else None
    others = OthersCpu(own_roots(target, process.pid)) if process else None
    if process:
        process.cpu_percent()
    state = {"conn": target.database() if target.dsn else None, "last": None}

    def sample(samples: ResourceSamples) -> None:
        if process:
            samples.source = f"psutil, pid {process.pid}"
            samples.service_cpu.append(process.cpu_percent())
            samples.add_memory(process.memory_info().rss / 2**20)
        if others:
            samples.others_cpu.append(others.sample())
        elif target.routes.metrics:
            samples.source = f"{target.routes.metrics} (process_* metrics)"
            try:
                scrape = metrics.parse(target.http.get(target.routes.metrics).text)
            except ValueError:  # not Prometheus text: no sample (the resource check then has no data)
                return
            cpu, rss, now = (
                scrape.value("process_cpu_seconds_total"),
                scrape.value("process_resident_memory_bytes"),
                time.monotonic(),
            )
            if cpu is not None and state["last"]:
                last_cpu, last_at = state["last"]
                samples.service_cpu.append(100 * (cpu - last_cpu) / (now - last_at))
            if cpu is not None:
                state["last"] = (cpu, now)
            if rss is not None:
                samples.add_memory(rss / 2**20)
        if state["conn"] is not None:
            samples.db_connections.append(state["conn"].execute(CONNECTIONS).fetchone()[0])

    return sample


MIN_GROWTH_SAMPLES = 8  # fewer memory samples after the warm-up give no trend worth judging


@dataclass
class Growth:
    """The service's memory trend over the measured load (after its warm-up): a Theil-Sen slope (the median of the
    pairwise slopes, robust to a few jumps of the allocator), as MB per 1000 requests served meanwhile."""

    mb_per_1000_requests: float
    mb_over_window: float
    samples: int
    unjudged: str = ""  # why there is no trend to judge (too few samples or requests)

    def __str__(self) -> str:
        return self.unjudged or (
            f"{self.mb_over_window:+.1f} MB = {self.mb_per_1000_requests:+.2f} MB per 1000 requests "
            f"({self.samples} samples, Theil-Sen)"
        )


def memory_growth(samples: ResourceSamples, since: float, until: float, requests: int) -> Growth:
    """The memory growth of the samples taken in [since, until] (epoch seconds: the load's measured window)."""
    taken = zip(samples.service_rss_at, samples.service_rss_mb, strict=True)
    points = [(at, mb) for at, mb in taken if since <= at <= until]
    if len(points) < MIN_GROWTH_SAMPLES or requests <= 0:
        why = (
            f"{len(points)} memory samples and {requests} requests after the warm-up: too few to judge memory growth "
            f"(at least {MIN_GROWTH_SAMPLES} samples; a longer performance.load.duration_s)"
        )
        return Growth(float("nan"), float("nan"), len(points), why)
    slope = theilslopes([mb for _, mb in points], [at for at, _ in points]).slope  # MB per second
    grown = slope * (until - since)
    return Growth(1000 * grown / requests, grown, len(points))
