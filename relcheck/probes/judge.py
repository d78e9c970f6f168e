"""Judging performance: SLA thresholds ("p(95) < 300ms"), error budgets, and a Kayenta-style comparison with a
baseline (Mann-Whitney U for a significant shift, plus an effect size the shift must exceed to matter)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from statistics import median

from relcheck.probes.loadtest import RouteStats

_THRESHOLD = re.compile(
    r"^\s*(?:p\((?P<pct>\d+(?:\.\d+)?)\)|(?P<stat>max|avg))\s*(?P<op><=|<)\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s)\s*$"
)


class ThresholdError(ValueError):
    pass


@dataclass(frozen=True)
class Threshold:
    text: str
    percentile: float | None  # None for max/avg
    stat: str
    strict: bool
    limit_ms: float

    def measure(self, stats: RouteStats) -> float:
        if self.stat == "max":
            return stats.max_ms
        if self.stat == "avg":
            return stats.hdr.get_mean_value() / 1000 if stats.count else float("nan")
        return stats.p(self.percentile)

    def holds(self, measured: float) -> bool:
        return not math.isnan(measured) and (measured < self.limit_ms if self.strict else measured <= self.limit_ms)


def threshold(text: str) -> Threshold:
    """k6-style latency threshold: "p(95) < 300ms", "p(99.9) <= 1s", "max < 2s", "avg < 50ms"."""
    match = _THRESHOLD.match(text)
    if not match:
        raise ThresholdError(f'not a latency threshold: {text!r} (write e.g. "p(95) < 300ms")')
    value = float(match["value"]) * (1000 if match["unit"] == "s" else 1)
    percentile = float(match["pct"]) if match["pct"] else None
    return Threshold(text.strip(), percentile, match["stat"] or "p", match["op"] == "<", value)


@dataclass
class Comparison:
    route: str
    baseline_n: int
    current_n: int
    baseline_median: float
    current_median: float
    p_value: float
    verdict: str  # pass, warn, fail

    @property
    def ratio(self) -> float:
        return self.current_median / self.baseline_median if self.baseline_median else float("inf")


def compare(
    route: str,
    baseline: list[float],
    current: list[float],
    confidence: float,
    allowed_increase: float,
    critical_increase: float,
) -> Comparison:
    """Higher latency is worse. pass: no significant increase, or one within allowed_increase (a ratio of medians);
    warn: significant and above allowed_increase; fail: significant and above critical_increase."""
    from scipy.stats import (
        mannwhitneyu,  # imported when needed: scipy.stats costs a second to load
    )

    p_value = float(mannwhitneyu(current, baseline, alternative="greater").pvalue)
    comparison = Comparison(route, len(baseline), len(current), median(baseline), median(current), p_value, "pass")
    if p_value < 1 - confidence:
        if comparison.ratio > critical_increase:
            comparison.verdict = "fail"
        elif comparison.ratio > allowed_increase:
            comparison.verdict = "warn"
    return comparison


def overall(comparisons: list[Comparison], critical_routes: list[str]) -> str:
    """fail if a critical route fails (every route is critical unless some are named); else warn if any route
    is worse; else pass."""
    critical = set(critical_routes) or {c.route for c in comparisons}
    if any(c.verdict == "fail" and c.route in critical for c in comparisons):
        return "fail"
    return "warn" if any(c.verdict != "pass" for c in comparisons) else "pass"
