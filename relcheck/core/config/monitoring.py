"""[monitoring]: the window's source, limits, success ratios and golden cases."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from relcheck.core.config.base import Model
from relcheck.core.config.target import RequestSpec


class Ratio(Model):
    """A success ratio from a counter with an outcome label: good / (good + bad)."""

    counter: str  # e.g. "kundli_calculations_total"
    label: str = "result"
    good: str = "ok"
    minimum: float = Field(0.99, ge=0, le=1)


class GoldenCase(Model):
    """A known input whose detected patterns are known (pattern-detection accuracy)."""

    create: RequestSpec  # makes the object (answer has object_field)
    detect: RequestSpec  # reads the patterns; {id} is the created object
    object_field: str = "id"
    list_field: str  # the list of detected patterns in the answer
    name_field: str = "name"
    expect: list[str]


class MonitoringSource(Model):
    """Where window readings come from: two scrapes of the service's own metrics, or a Prometheus server (PromQL
    over `window`; `service_selector` picks the service's series, e.g. 'job="kundli"')."""

    kind: Literal["scrape", "prometheus"] = "scrape"
    url: str = ""
    bearer_token: str = ""  # e.g. "env:PROMETHEUS_TOKEN"
    username: str = ""
    password: str = ""
    ca_file: str = ""
    window: str = Field("10m", pattern=r"^\d+[smhd]$")
    service_selector: str = ""
    baseline_selector: str = ""  # the previous release's instances (canary analysis); default: none
    canary_error_increase: float = Field(0.01, ge=0, le=1)  # 5xx share above the previous release's tolerated
    host_selector: str = ""  # node_exporter's series of the service host, e.g. 'job="node",instance="app1:9100"'
    step_s: float = Field(15, gt=0)  # the canary's range step and rate window: at least twice the scrape interval
    queries: dict[str, str] = {}  # reading -> PromQL replacing the default ({service}, {window} placeholders)
    timeout_s: float = Field(10, gt=0)

    @model_validator(mode="after")
    def _prometheus_needs_its_address(self):
        if self.kind == "prometheus" and not (self.url and self.service_selector):
            raise ValueError("a prometheus source needs url and service_selector")
        return self


class Monitoring(Model):
    """The Monitoring section (and the post-release monitoring tasks): the live service's own metrics, read after a
    little synthetic traffic."""

    source: MonitoringSource = MonitoringSource()

    request_counter: str = ""  # requests by route and status, e.g. "kundli_http_requests_total"
    status_label: str = "status"
    route_labels: list[str] = ["method", "route"]
    latency_histogram: str = ""  # e.g. "kundli_http_request_duration_seconds"
    probe_rounds: int = Field(3, ge=0)  # rounds of the critical paths run as synthetic traffic first
    sample_s: float = Field(2, gt=0)  # CPU is a rate over this window
    cpu_percent: float = Field(80, gt=0)
    memory_mb: float = Field(512, gt=0)
    min_free_disk_percent: float = Field(10, ge=0, le=100)
    max_health_rtt_ms: float = Field(500, gt=0)
    min_rps: float | None = Field(None, gt=0)  # request rate bounds over the window; unset: not verified
    max_rps: float | None = Field(None, gt=0)
    error_budget: float = Field(0.01, ge=0, le=1)  # 5xx share
    route_error_budget: float = Field(0.05, ge=0, le=1)  # 5xx share per route
    p95_ms: float | None = Field(None, gt=0)  # the latency limit of every route (your SLA); unset: not verified
    route_p95_ms: dict[str, float] = {}  # "METHOD route" -> limit (replaces p95_ms for that route)
    min_route_requests: int = Field(5, ge=1)  # a route with fewer requests is shown (a warning), not judged
    cache_hits: str = ""  # counters for the cache hit rate
    cache_misses: str = ""
    min_cache_hit_rate: float | None = Field(None, gt=0, le=1)  # unset: not verified (0 could never fail)
    queue_gauges: list[str] = []
    max_queue: float = Field(100, ge=0)
    connection_gauges: list[str] = []
    max_connections: float = Field(50, ge=0)
    calculations: Ratio | None = None
    validations: Ratio | None = None
    contract_violations: str = ""  # a counter that must stay at zero
    correlation_route: str = ""  # "METHOD route" whose p95 is the correlation analysis performance
    correlation_p95_ms: float = Field(250, gt=0)
    golden: list[GoldenCase] = []
    min_detection_accuracy: float = Field(1.0, ge=0, le=1)
