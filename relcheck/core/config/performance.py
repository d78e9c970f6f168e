"""[performance]: load scenarios, stress, SLA, resources, the A/B baseline, workers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from relcheck.core.config.base import Model


class Scenario(Model):
    locustfile: str  # relative to this file
    users: int = Field(10, ge=1)
    spawn_rate: float = Field(10, gt=0)
    duration_s: float = Field(20, gt=0)
    warmup_s: float = Field(2, ge=0)  # left out of the route statistics
    rate: float = Field(0, ge=0)  # >0: constant-rate mode, requests per second per user
    min_requests: int = Field(1, ge=1)
    min_duration_ratio: float = Field(0.9, gt=0, le=1)  # of duration_s the load must have run


class Stress(Model):
    locustfile: str
    steps: list[int] = [1, 2, 4, 8, 16, 32, 64]
    step_s: float = Field(5, gt=0)
    warmup_s: float = Field(1, ge=0)
    p95_ms: float = Field(250, gt=0)  # the SLA a step must hold
    error_budget: float = Field(0.01, ge=0, le=1)
    required_rps: float | None = Field(None, gt=0)  # unset: the previous release's capacity x capacity_tolerance
    capacity_tolerance: float = Field(0.8, gt=0, le=1)  # share of the previous release's capacity to reach


class Sla(Model):
    default: list[str] = ["p(95) < 250ms"]
    routes: dict[str, list[str]] = {}  # "METHOD name" -> thresholds replacing the default
    error_budget: float = Field(0.01, ge=0, le=1)  # total
    route_error_budget: float = Field(0.01, ge=0, le=1)  # each route: no looser than the total (a route failing
    #   2 % of its users is no better than the service failing 2 %), as the stress ramp's 1 %


class Resources(Model):
    cpu_percent: float = Field(80, gt=0)  # service CPU, percent of one core (mean over the load run)
    memory_mb: float = Field(512, gt=0)  # service resident memory (peak)
    memory_growth_mb_per_1000_requests: float = Field(10, gt=0)  # its growth over the measured load (after the
    #   warm-up): a leak long before the peak reaches memory_mb. Healthy: the reference +0.12 (`relcheck run
    #   performance`, 732 requests), Kinto +1.91 (tests/test_kinto.py, 393 requests)
    db_connections: int = Field(50, ge=1)  # connections to the target database (peak)


class Baseline(Model):
    mode: Literal["previous-release", "history", "none"] = "history"
    confidence: float = Field(0.98, gt=0.5, lt=1)
    allowed_increase: float = Field(1.10, ge=1)  # median latency ratio tolerated without a warning
    critical_increase: float = Field(1.30, ge=1)  # above this a significant increase fails
    critical_routes: list[str] = []  # only these can fail the item; default all
    min_samples: int = Field(50, ge=10)
    duration_s: float | None = Field(None, gt=0)  # the previous-release A/B run at most; default performance.load's
    looks: int = Field(4, ge=1, le=12)  # the A/B run in this many equal parts, judged after each; it stops once
    #   every critical route is decided (O'Brien-Fleming levels: early looks are strict, the last is `confidence`)


class Workers(Model):
    """Locust master/workers: the master runs here, `count` workers connect to it, on this host or on load hosts
    through command_prefix (e.g. ["ssh", "loadgen1"], with relcheck installed there)."""

    count: int = Field(ge=1, le=64)
    command_prefix: list[str] = []
    python: str = ""  # the workers' interpreter; default relcheck's
    master_host: str = "127.0.0.1"  # the address the workers reach the master at ...
    master_bind_host: str = "127.0.0.1"  # ... and the one it listens on
    connect_timeout_s: float = Field(30, gt=0)


class Performance(Model):
    load: Scenario
    stress: Stress
    smoke: Scenario | None = None
    sla: Sla = Sla()
    resources: Resources = Resources()
    baseline: Baseline = Baseline()
    processes: int = Field(1, ge=1, le=64)  # locust --processes (scale-out on this host) ...
    workers: Workers | None = None  # ... or master/workers (scale-out across load hosts)
    generator_cpu_limit: float = Field(90, gt=0, le=100)
    # a service on relcheck's host: above this share of the host's CPU taken by other processes during the load run
    # (the median sample), a broken response-time SLA is not verified (the service waited for the CPU), never a pass
    max_other_cpu_percent: float = Field(25, gt=0, le=100)
    max_users: int = Field(500, ge=1)  # safety bounds on every run
    max_duration_s: float = Field(1800, gt=0)

    @model_validator(mode="after")
    def _bounded(self):
        for name in ("load", "smoke"):
            scenario = getattr(self, name)
            if scenario and (scenario.users > self.max_users or scenario.duration_s > self.max_duration_s):
                raise ValueError(
                    f"{name}: exceeds max_users ({self.max_users}) or max_duration_s ({self.max_duration_s:g})"
                )
        if max(self.stress.steps) > self.max_users or len(self.stress.steps) * self.stress.step_s > self.max_duration_s:
            raise ValueError("stress: steps exceed max_users or max_duration_s")
        if self.workers and self.processes > 1:
            raise ValueError("processes and workers: choose one way to scale out")
        return self
