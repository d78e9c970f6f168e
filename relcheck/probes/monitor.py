"""Readings from a service's Prometheus metrics, shared by the Monitoring and Post-Release checks: CPU and memory
of its process, 5xx shares, p95 per route (bucket resolution), gauges and success ratios."""

from __future__ import annotations

from dataclasses import dataclass

from relcheck.probes.metrics import Scrape, histogram_quantile, label_values


@dataclass
class Reading:
    what: str
    value: float | None
    limit: str
    ok: bool


def cpu_percent(first: Scrape, second: Scrape, seconds: float) -> float | None:
    a, b = first.value("process_cpu_seconds_total"), second.value("process_cpu_seconds_total")
    return None if a is None or b is None else 100 * (b - a) / seconds


def memory_mb(scrape: Scrape) -> float | None:
    rss = scrape.value("process_resident_memory_bytes")
    return None if rss is None else rss / 2**20


def requests_by(scrape: Scrape, counter: str, labels: list[str]) -> dict[tuple, float]:
    """Request counts keyed by the values of the given labels (summed over the others)."""
    counts: dict[tuple, float] = {}
    for family in scrape.families.values():
        for name, lbls, value in family:
            if name == counter:
                key = tuple(lbls.get(label, "") for label in labels)
                counts[key] = counts.get(key, 0.0) + value
    return counts


def server_error_share(
    scrape: Scrape, counter: str, status_label: str, route_labels: list[str]
) -> tuple[float, float, dict[str, tuple[float, float]]]:
    """(5xx, all) requests since the service started, and the same per route."""
    by = requests_by(scrape, counter, [*route_labels, status_label])
    per_route: dict[str, tuple[float, float]] = {}
    for key, count in by.items():
        route, status = " ".join(key[:-1]), key[-1]
        bad, total = per_route.get(route, (0.0, 0.0))
        per_route[route] = (bad + (count if status.startswith("5") else 0), total + count)
    return sum(b for b, _ in per_route.values()), sum(t for _, t in per_route.values()), per_route


def p95_per_route(scrape: Scrape, histogram: str, route_labels: list[str]) -> dict[str, float]:
    """p95 latency in milliseconds per route since the service started (Prometheus bucket interpolation)."""
    routes = {
        tuple(lbls.get(label, "") for label in route_labels)
        for name, lbls, _ in scrape.families.get(histogram, [])
        if name == f"{histogram}_count"
    }
    found = {}
    for key in sorted(routes):
        value = histogram_quantile(scrape, histogram, 0.95, **dict(zip(route_labels, key, strict=True)))
        if value is not None:
            found[" ".join(key)] = value * 1000
    return found


def ratio(scrape: Scrape, counter: str, label: str, good: str) -> tuple[float, float]:
    """(good, all) of a counter with an outcome label."""
    total = sum(scrape.value(counter, **{label: v}) or 0 for v in label_values(scrape, counter, label))
    return (scrape.value(counter, **{label: good}) or 0.0), total
