"""Judging performance: SLA thresholds ("p(95) < 300ms"), error budgets, and a Kayenta-style comparison with a
baseline (Mann-Whitney U for a significant shift, plus an effect size the shift must exceed to matter, plus a
bootstrap confidence interval of the median ratio: samples too noisy to exclude the allowed slowdown are
inconclusive, never a pass)."""

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
        if self.stat == "avg":
            return stats.hdr.get_mean_value() / 1000 if stats.count else float("nan")
        if self.stat == "max" or self.percentile is None:
            return stats.max_ms
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
    verdict: str  # pass, warn, fail, inconclusive
    ratio_low: float = 0.0  # the confidence interval of current median / baseline median
    ratio_high: float = 0.0

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
    """Higher latency is worse. fail: significant and above critical_increase (a ratio of medians); warn: significant
    and above allowed_increase; pass: neither, and the interval of the ratio excludes anything above
    allowed_increase; inconclusive: neither, but the samples cannot exclude it (too noisy, too few)."""
    p_value = p_slower(baseline, current)
    low, high = median_ratio_interval(baseline, current, confidence)
    comparison = Comparison(
        route, len(baseline), len(current), median(baseline), median(current), p_value, "pass", low, high
    )
    if p_value < 1 - confidence and comparison.ratio > critical_increase:
        comparison.verdict = "fail"
    elif p_value < 1 - confidence and comparison.ratio > allowed_increase:
        comparison.verdict = "warn"
    elif high > allowed_increase:
        comparison.verdict = "inconclusive"
    return comparison


def look_confidence(confidence: float, look: int, looks: int) -> float:
    """The level a sequential comparison judges its look-th of `looks` looks at (O'Brien-Fleming: the boundary
    z * sqrt(looks / look) — an early look needs a far clearer result, the last one is judged at `confidence`)."""
    from scipy.stats import norm

    return float(norm.cdf(norm.ppf(confidence) * math.sqrt(looks / look)))


def compare_routes(baseline: dict[str, list[float]], current: dict[str, list[float]], cfg, confidence: float):
    """Every route with cfg.min_samples in both, compared (cfg: performance.baseline)."""
    return [
        compare(name, baseline[name], current[name], confidence, cfg.allowed_increase, cfg.critical_increase)
        for name in sorted(set(baseline) & set(current))
        if min(len(baseline[name]), len(current[name])) >= cfg.min_samples
    ]


def p_slower(baseline: list[float], current: list[float]) -> float:
    """Mann-Whitney's one-sided p-value that current's latencies are larger than baseline's."""
    from scipy.stats import mannwhitneyu  # imported when needed: scipy.stats costs a second to load

    return float(mannwhitneyu(current, baseline, alternative="greater").pvalue)


def significantly_slower(baseline: list[float], current: list[float], confidence: float) -> bool:
    """p_slower below 1 - confidence (False with under 3 samples a side)."""
    return min(len(baseline), len(current)) >= 3 and p_slower(baseline, current) < 1 - confidence


def median_ratio_interval(
    baseline: list[float], current: list[float], confidence: float, resamples: int = 1000
) -> tuple[float, float]:
    """Bootstrap percentile interval of median(current) / median(baseline), one-sided bounds at `confidence` each
    (a fixed seed: the same samples give the same interval)."""
    import numpy as np

    rng = np.random.default_rng(0)
    base, cur = np.asarray(baseline, dtype=float), np.asarray(current, dtype=float)
    base_medians = np.median(base[rng.integers(0, len(base), (resamples, len(base)))], axis=1)
    cur_medians = np.median(cur[rng.integers(0, len(cur), (resamples, len(cur)))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = cur_medians / base_medians
    ratios = np.where(np.isfinite(ratios), ratios, np.inf)
    return float(np.quantile(ratios, 1 - confidence)), float(np.quantile(ratios, confidence))


def overall(comparisons: list[Comparison], critical_routes: list[str]) -> str:
    """fail if a critical route fails (every route is critical unless some are named); else inconclusive if a
    critical route's comparison is; else warn if any route is worse or could not be told apart; else pass."""
    critical = set(critical_routes) or {c.route for c in comparisons}
    if any(c.verdict == "fail" and c.route in critical for c in comparisons):
        return "fail"
    if any(c.verdict == "inconclusive" and c.route in critical for c in comparisons):
        return "inconclusive"
    return "warn" if any(c.verdict != "pass" for c in comparisons) else "pass"


@dataclass
class ErrorComparison:
    """The new release's error ratio against the previous release's over the same window: Fisher's exact test."""

    current: tuple[float, float]  # (errors, requests)
    baseline: tuple[float, float]
    p_value: float
    verdict: str  # pass | fail

    @staticmethod
    def ratio(counts: tuple[float, float]) -> float:
        return counts[0] / counts[1] if counts[1] else 0.0


def compare_error_ratios(
    current: tuple[float, float], baseline: tuple[float, float], confidence: float, tolerance: float
) -> ErrorComparison:
    """fail: the new release's error ratio is significantly higher (one-sided Fisher's exact test at confidence) and
    higher by more than tolerance (an absolute share); pass otherwise."""
    from scipy.stats import fisher_exact

    (bad_new, all_new), (bad_old, all_old) = current, baseline
    table = [[round(bad_new), round(all_new - bad_new)], [round(bad_old), round(all_old - bad_old)]]
    p_value = float(fisher_exact(table, alternative="greater")[1])
    worse = ErrorComparison.ratio(current) - ErrorComparison.ratio(baseline) > tolerance
    verdict = "fail" if p_value < 1 - confidence and worse else "pass"
    return ErrorComparison(current, baseline, p_value, verdict)
