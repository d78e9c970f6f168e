"""What the service uses while load runs: CPU and memory (psutil for a local process, the process_* metrics
for a remote one) and its database connections."""

from __future__ import annotations

import time

import psutil

from relcheck.probes import metrics
from relcheck.probes.loadtest import ResourceSamples
from relcheck.target.target import Target

CONNECTIONS = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"


def probe(target: Target):
    """A function sampling the target into a ResourceSamples, one call per tick."""
    pid = getattr(target.service, "pid", None)
    process = psutil.Process(pid) if pid and psutil.pid_exists(pid) else None
    if process:
        process.cpu_percent()
    state = {"conn": target.database() if target.dsn else None, "last": None}

    def sample(samples: ResourceSamples) -> None:
        if process:
            samples.source = f"psutil, pid {process.pid}"
            samples.service_cpu.append(process.cpu_percent())
            samples.service_rss_mb.append(process.memory_info().rss / 2**20)
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
                samples.service_rss_mb.append(rss / 2**20)
        if state["conn"] is not None:
            samples.db_connections.append(state["conn"].execute(CONNECTIONS).fetchone()[0])

    return sample
