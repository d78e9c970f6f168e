"""Prometheus text exposition, parsed with prometheus_client's parser."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from relcheck.core.statuses import NotVerified


@dataclass
class Scrape:
    families: dict[str, list[tuple[str, dict, float]]]  # family -> [(sample name, labels, value)]
    taken: float = 0.0  # when it was scraped (Unix time; 0: unknown)

    def value(self, sample: str, **labels) -> float | None:
        """Sum of a sample's values over series matching the labels (None if absent)."""
        found = [
            v
            for family in self.families.values()
            for name, lbls, v in family
            if name == sample and all(lbls.get(k) == str(val) for k, val in labels.items())
        ]
        return sum(found) if found else None

    def has(self, family: str) -> bool:
        return family in self.families or any(family == f"{name}_total" for name in self.families)


def scrape(target, route: str) -> Scrape:
    """The target's Prometheus metrics at route; NotVerified (could not check, never a failure) when the route
    serves none: "GET /metrics -> HTTP 404: no Prometheus metrics here"."""
    if not route:
        raise NotVerified("no metrics route configured (target.routes.metrics is empty)")
    answer = target.http.get(route)
    if answer.status != 200:
        outcome = answer.error if answer.status is None else f"HTTP {answer.status}"
        raise NotVerified(f"GET {route} -> {outcome}: no Prometheus metrics here")
    if "html" in (answer.header("Content-Type") or ""):
        raise NotVerified(f"GET {route} -> an HTML page: no Prometheus metrics here")
    try:
        found = parse(answer.text)
    except ValueError as exc:
        raise NotVerified(f"GET {route}: not Prometheus text ({str(exc).splitlines()[0][:120]})") from None
    if not found.families:
        raise NotVerified(f"GET {route}: no metric families")
    found.taken = time.time()
    return found


def parse(text: str) -> Scrape:
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = [(s.name, dict(s.labels), s.value) for s in family.samples]
    return Scrape(families)


@dataclass(frozen=True)
class Quantile:
    """A quantile of a histogram, in the buckets' unit. Above the top finite bucket only a lower bound is known: `above`
    is then set and `value` is that bucket's bound — the quantile is more than it (Prometheus reports the bound)."""

    value: float
    above: bool = False

    def exceeds(self, limit: float) -> bool | None:
        """Whether the quantile is over the limit; None when it cannot be told (above a bound that is not under it)."""
        if self.above:
            return True if self.value > limit else None
        return self.value > limit


def quantile(buckets: dict[float, float], q: float) -> Quantile | None:
    """Prometheus' histogram_quantile over cumulative bucket counts (upper bound -> count), linear within a bucket;
    None without observations."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] == 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound = lower_count = 0.0
    for bound, count in ordered:
        if count >= rank:
            if bound == float("inf"):
                return Quantile(lower_bound, above=True)
            return Quantile(
                lower_bound + (bound - lower_bound) * (rank - lower_count) / max(count - lower_count, 1e-12)
            )
        lower_bound, lower_count = bound, count
    return Quantile(lower_bound, above=True)  # q > 1
