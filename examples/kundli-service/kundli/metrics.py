"""Prometheus metrics (text exposition at /metrics)."""

from __future__ import annotations

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector,
                               generate_latest)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, omit: str | None = None) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.omit = omit
        r = self.registry
        self.requests = Counter("kundli_http_requests", "HTTP requests served", ["method", "route", "status"], registry=r)
        self.latency = Histogram("kundli_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("kundli_http_requests_in_flight", "HTTP requests being served", registry=r)
        self.db_connections = Gauge("kundli_db_connections_active", "Database connections in use", registry=r)
        self.cache_hits = Counter("kundli_cache_hits", "Chart cache hits", registry=r)
        self.cache_misses = Counter("kundli_cache_misses", "Chart cache misses", registry=r)
        self.queue_length = Gauge("kundli_job_queue_length", "Recalculation jobs waiting", registry=r)
        self.calculations = Counter("kundli_calculations", "Chart calculations", ["result"], registry=r)
        self.validations = Counter("kundli_validations", "Request validations", ["result"], registry=r)
        self.contract_violations = Counter("kundli_contract_violations", "API contract violations", registry=r)
        self.yogas = Counter("kundli_yogas_detected", "Yogas found by pattern detection", ["yoga"], registry=r)

    def exposition(self) -> bytes:
        text = generate_latest(self.registry)
        if not self.omit:
            return text
        # Fault switch: leave one family out.
        return b"".join(line for line in text.splitlines(keepends=True)
                        if not _belongs(line.decode(), self.omit))


def _belongs(line: str, family: str) -> bool:
    name = line.split(" ", 3)[2] if line.startswith("# ") else line.split("{", 1)[0].split(" ", 1)[0]
    return name == family or name.startswith(family + "_")
