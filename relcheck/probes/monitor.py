"""Readings from a service's Prometheus metrics, shared by the Monitoring and Post-Release checks: CPU and memory
of its process, request rates, 5xx shares, p95 per route (bucket resolution), gauges, counts and success ratios — over
a *window*: two scrapes of the service's own metrics (ScrapeWindow) or PromQL against a Prometheus server
(PrometheusWindow), the same readings either way, each saying how it was measured."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from relcheck.core import durations
from relcheck.core.problems import Problem
from relcheck.core.statuses import NotVerified, require
from relcheck.probes import judge
from relcheck.probes.metrics import Quantile, Scrape, quantile


def memory_mb(scrape: Scrape) -> float | None:
    rss = scrape.value("process_resident_memory_bytes")
    return None if rss is None else rss / 2**20


def series(scrape: Scrape, sample: str) -> dict[tuple, float]:
    """A sample's value per series, keyed by its sorted (label, value) pairs."""
    return {
        tuple(sorted(lbls.items())): value
        for family in scrape.families.values()
        for name, lbls, value in family
        if name == sample
    }


def grouped(values: dict[tuple, float], labels: list[str]) -> dict[tuple, float]:
    """Per-series values summed by the values of the given labels."""
    counts: dict[tuple, float] = {}
    for key, value in values.items():
        lbls = dict(key)
        by = tuple(lbls.get(label, "") for label in labels)
        counts[by] = counts.get(by, 0.0) + value
    return counts


def increase(before: dict[tuple, float], after: dict[tuple, float], restarted: bool) -> tuple[dict[tuple, float], bool]:
    """Each series' growth between two scrapes with Prometheus' increase() semantics, and whether it was reset: a
    counter that went down (or vanished) was reset by a restart of the process, and then every series' growth is
    its later value; a series born between the scrapes counts from zero."""
    reset = restarted or any(after.get(key, -1.0) < value for key, value in before.items())
    return {key: value if reset else value - before.get(key, 0.0) for key, value in after.items()}, reset


def at(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def server_errors_by_route(by: dict[tuple, float]) -> dict[str, tuple[float, float]]:
    """(5xx, all) per route, from request counts keyed by (*route labels, status)."""
    per_route: dict[str, tuple[float, float]] = {}
    for key, count in by.items():
        route, status = " ".join(key[:-1]), key[-1]
        bad, total = per_route.get(route, (0.0, 0.0))
        per_route[route] = (bad + (count if status.startswith("5") else 0), total + count)
    return per_route


@dataclass
class RouteLatency:
    p95_ms: float  # with above: the top finite bucket's bound, which the p95 is more than
    observations: float  # requests the p95 is over: a route with few is shown, not judged
    above: bool = False

    def over(self, limit_ms: float) -> bool | None:
        """Whether the p95 is over the limit; None when it cannot be told (above a bucket bound not under the limit)."""
        return Quantile(self.p95_ms, self.above).exceeds(limit_ms)

    @property
    def shown(self) -> str:
        return f"> {self.p95_ms:.1f}" if self.above else f"{self.p95_ms:.1f}"


def route_quantiles(buckets: dict[tuple, float], counts: dict[tuple, float]) -> dict[str, RouteLatency]:
    """p95 latency in milliseconds per route from cumulative bucket counts keyed by (*route label values, le) and
    observation counts keyed by the route label values (Prometheus bucket interpolation)."""
    per_route: dict[tuple, dict[float, float]] = {}
    for key, count in buckets.items():
        route, bound = per_route.setdefault(key[:-1], {}), float(key[-1])
        route[bound] = route.get(bound, 0.0) + count
    found = {}
    for key in sorted(counts):
        p95 = quantile(per_route.get(key, {}), 0.95)
        if p95 is not None:
            found[" ".join(key)] = RouteLatency(p95.value * 1000, counts[key], p95.above)
    return found


def p95_per_route(scrape: Scrape, histogram: str, route_labels: list[str]) -> dict[str, RouteLatency]:
    """p95 latency in milliseconds per route since the service started (one scrape's buckets)."""
    buckets = grouped(series(scrape, f"{histogram}_bucket"), [*route_labels, "le"])
    return route_quantiles(buckets, grouped(series(scrape, f"{histogram}_count"), route_labels))


@dataclass
class Measured:
    """A value over the monitoring window and how it was measured: the PromQL as sent, or the scrapes; a per-process
    reading is the highest instance's, named."""

    value: float
    how: str
    instance: str = ""

    @property
    def on(self) -> str:
        return f" on {self.instance}" if self.instance else ""


@dataclass(frozen=True)
class Gauges:
    """Configured gauges against one maximum: each one's value, and the problem (not exported, or above it)."""

    values: dict[str, Measured | None]
    maximum: float

    def table(self) -> tuple[list[str], list[tuple]]:
        rows = [
            (n, "not exported" if v is None else f"{v.value:g}", f"{self.maximum:g}", v.how if v else "-")
            for n, v in self.values.items()
        ]
        return ["gauge", "value", "maximum", "measured"], rows

    @property
    def problem(self) -> str:
        missing = [n for n, v in self.values.items() if v is None]
        over = [f"{n} = {v.value:g}" for n, v in self.values.items() if v and v.value > self.maximum]
        if missing:
            return f"not exported: {', '.join(missing)}"
        return f"above {self.maximum:g}: {', '.join(over)}" if over else ""


def gauges(window, names: list[str], maximum: float, what: str) -> Gauges:
    require(names, f"no {what} gauges configured (monitoring)")
    return Gauges({name: window.gauge(name) for name in names}, maximum)


@dataclass(frozen=True)
class SuccessRatio:
    """A counter's good outcomes (spec.label == spec.good) among all of them, against spec.minimum."""

    what: str
    counter: str
    good: float
    total: float
    minimum: float
    how: str

    @property
    def facts(self) -> dict:
        return {
            "counter": self.counter,
            "good": f"{self.good:.0f}",
            "all": f"{self.total:.0f}",
            "ratio": f"{self.good / self.total:.2%}",
            "minimum": f"{self.minimum:.0%}",
            "measured": self.how,
        }

    @property
    def problem(self) -> str:
        ratio = self.good / self.total
        return f"{self.what}: {ratio:.2%} < {self.minimum:.0%}" if ratio < self.minimum else ""


def success_ratio(window, spec, what: str) -> SuccessRatio:
    """Not verified without a counter configured (monitoring.<spec>) or before it counts anything."""
    require(spec, f"no {what} counter configured (monitoring)")
    counts, how = window.totals_by(spec.counter, spec.label)
    good, total = counts.get(spec.good, 0.0), sum(counts.values())
    require(total, f"{spec.counter} counted nothing in the window ({how}): no traffic it counts was sent")
    return SuccessRatio(what, spec.counter, good, total, spec.minimum, how)


@dataclass(frozen=True)
class ErrorShares:
    """5xx answers per route over the window against the budgets (monitoring.error_budget for the total,
    route_error_budget for each route with min_route_requests+ requests; fewer are shown, not judged)."""

    per_route: dict[str, tuple[float, float]]  # route -> (5xx, requests)
    budget: float
    route_budget: float
    min_requests: int

    @property
    def rows(self) -> list[tuple]:
        items = sorted(self.per_route.items())
        return [(r, f"{b:.0f}", f"{t:.0f}", f"{b / t:.1%}") for r, (b, t) in items if t]

    @property
    def too_few(self) -> list[str]:
        return [
            f"{r} {b:.0f} of {t:.0f}" for r, (b, t) in sorted(self.per_route.items()) if b and t < self.min_requests
        ]

    @property
    def problems(self) -> list[Problem]:
        bad, total = (sum(v[i] for v in self.per_route.values()) for i in (0, 1))
        found = []
        if bad / total > self.budget:
            share = f"{bad / total:.2%} of {total:.0f} requests"
            found.append(Problem("5xx answers:", share, ">", f"budget {self.budget:.1%}"))
        judged = {r: (b, t) for r, (b, t) in self.per_route.items() if t >= self.min_requests}
        limit = f"route budget {self.route_budget:.0%}"
        over = [(r, b / t) for r, (b, t) in sorted(judged.items()) if b / t > self.route_budget]
        return found + [Problem(r, f"{share:.1%} 5xx", ">", limit) for r, share in over]


def error_shares(window, cfg) -> tuple[ErrorShares, str]:
    per_route, how = window.server_errors()
    require(sum(t for _, t in per_route.values()), f"no requests counted: {how}")
    return ErrorShares(per_route, cfg.error_budget, cfg.route_error_budget, cfg.min_route_requests), how


@dataclass(frozen=True)
class Latencies:
    """p95 per route over the window against monitoring.p95_ms / route_p95_ms (routes with min_route_requests+)."""

    per_route: dict[str, RouteLatency]
    default_ms: float
    route_ms: dict[str, float]
    min_requests: int

    def limit(self, route: str) -> float:
        return self.route_ms.get(route, self.default_ms)

    @property
    def judged(self) -> dict[str, RouteLatency]:
        return {r: v for r, v in self.per_route.items() if v.observations >= self.min_requests and self.limit(r)}

    @property
    def rows(self) -> list[tuple]:
        def shown(route: str, v: RouteLatency) -> str:
            if route in self.judged:
                return f"{self.limit(route):g}"
            return "no limit" if v.observations >= self.min_requests else "too few to judge"

        return [(r, v.shown, f"{v.observations:.0f}", shown(r, v)) for r, v in self.per_route.items()]

    @property
    def slow(self) -> list[Problem]:
        over = [(r, v) for r, v in self.judged.items() if v.over(self.limit(r))]
        return [Problem(r, f"{v.shown} ms", ">", f"{self.limit(r):g} ms") for r, v in over]

    @property
    def unverified(self) -> str:
        """Why the limits could not be judged ("" when they were)."""
        unknown = [
            f"{r} {v.shown} ms (limit {self.limit(r):g})"
            for r, v in self.judged.items()
            if v.over(self.limit(r)) is None
        ]
        if unknown:
            return f"p95 above the top histogram bucket, not comparable with the limit: {', '.join(unknown)}"
        few = f"no route with a limit has {self.min_requests}+ requests (monitoring.min_route_requests)"
        return "" if self.judged else few


def latencies(window, cfg) -> tuple[Latencies, str]:
    require(cfg.p95_ms or cfg.route_p95_ms, "no latency limit configured (monitoring.p95_ms / route_p95_ms)")
    per_route, how = window.p95_per_route()
    return Latencies(per_route, cfg.p95_ms, dict(cfg.route_p95_ms), cfg.min_route_requests), how


CLOCK_SLACK_S = 1.0  # a process start this much before the first scrape still counts as inside the window
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


@dataclass
class Collection:
    """What the metrics pipeline collects of the service: its metric families, how much each watched counter grew
    over the window (None: no series), and the traffic they counted ("": none the service counts was sent)."""

    families: set[str]
    counters: dict[str, float | None]
    how: str
    traffic: str

    def has(self, family: str) -> bool:
        return family in self.families or family.removesuffix("_total") in self.families


def family_of(series_name: str) -> str:
    return next((series_name.removesuffix(s) for s in SUFFIXES if series_name.endswith(s)), series_name)


class ScrapeWindow:
    """The window between two scrapes of the service's own /metrics: every count is its growth between them,
    reset-aware (what the service counted before the first scrape — a probe's, a test run's negative cases — is not
    the window's); gauges are the second scrape's."""

    def __init__(self, first: Scrape, second: Scrape, seconds: float, cfg) -> None:
        self.first, self.second, self.seconds, self.cfg = first, second, seconds, cfg
        before, after = (s.value("process_start_time_seconds") for s in (first, second))
        # "" or when the process restarted between the scrapes (its start time moved into the window)
        self.restart = ""
        if before is not None and after is not None and before != after:
            if first.taken and after < first.taken - CLOCK_SLACK_S:
                # not a restart: the second answer came from another process that was running all along (a worker
                # of a multi-process server, a replica behind one address); its counters are not this window's growth
                raise NotVerified(
                    f"the two scrapes of the service's metrics reached different processes (started {at(before)} and "
                    f"{at(after)}, both before the window): a multi-process server or replicas behind one address "
                    "cannot be measured by scraping; use Prometheus (monitoring.source) or one metrics endpoint per "
                    "process"
                )
            self.restart = at(after)
        self.how = f"two scrapes of the service's metrics {seconds:.1f} s apart"

    def span(self) -> tuple[float, float]:
        """The window as Unix times (its seconds were measured on the monotonic clock)."""
        end = self.second.taken or time.time()
        return end - self.seconds, end

    def growth(self, sample: str, labels: list[str]) -> tuple[dict[tuple, float], str]:
        """A counter's growth between the scrapes by the given labels (reset-aware), and how it was counted."""
        grown, reset = increase(series(self.first, sample), series(self.second, sample), bool(self.restart))
        if not reset:
            return grouped(grown, labels), self.how
        when = f" at {self.restart}" if self.restart else f" ({sample} went down)"
        return grouped(grown, labels), f"{self.how}; the service restarted between them{when}: counted since"

    def absent(self, name: str) -> None:
        """A series the second scrape has no samples of: not exported (None), unless the process restarted between
        the scrapes or the family is exported without series yet — then not verified."""
        if self.restart or series(self.first, name):
            when = f" at {self.restart}" if self.restart else " between the scrapes"
            raise NotVerified(f"no samples for {name} since the service restarted{when}: wait until it counts")
        if [] in (self.second.families.get(family_of(name)), self.second.families.get(name)):
            raise NotVerified(f"no samples for {name} yet: the family is exported, without series")

    def cpu_percent(self) -> Measured:
        cpu = "process_cpu_seconds_total"
        if not series(self.first, cpu) or not series(self.second, cpu):
            raise NotVerified(f"the service exports no {cpu}")
        grown, how = self.growth(cpu, [])
        return Measured(100 * sum(grown.values()) / self.seconds, how)

    def memory_mb(self) -> Measured:
        value = memory_mb(self.second)
        if value is None:
            raise NotVerified("the service exports no process_resident_memory_bytes")
        return Measured(value, self.how)

    def request_rate(self) -> Measured:
        counter = self.cfg.request_counter
        require(counter, "no request counter configured (monitoring.request_counter)")
        counted = series(self.second, counter)
        if not counted:
            self.absent(counter)
        require(sum(counted.values()), f"{counter} counts no requests")
        grown, how = self.growth(counter, [])
        return Measured(sum(grown.values()) / self.seconds, how)

    def gauge(self, name: str) -> Measured | None:
        """A gauge's value now (None: not exported)."""
        value = self.second.value(name)
        if value is None:
            self.absent(name)
            return None
        return Measured(value, self.how)

    def total(self, counter: str) -> Measured | None:
        """A counter's growth over the window (None: not exported)."""
        if not series(self.second, counter):
            self.absent(counter)
            return None
        grown, how = self.growth(counter, [])
        return Measured(sum(grown.values()), how)

    def collection(self, counters: list[str], traffic: str) -> Collection:
        """The families of the second scrape, and each counter's growth between the scrapes around the traffic."""
        grown: dict[str, float | None] = {}
        hows = {self.how}
        for counter in counters:
            by, how = self.growth(counter, [])
            if not by:
                self.absent(counter)
            grown[counter] = sum(by.values()) if by else None
            hows.add(how)
        how = max(hows, key=len)  # a restart's note, if any counter saw one
        return Collection(set(self.second.families), grown, f"{how} around {traffic or 'no traffic'}", traffic)

    def totals_by(self, counter: str, label: str) -> tuple[dict[str, float], str]:
        """A counter's growth over the window, by one label."""
        grown, how = self.growth(counter, [label])
        return {key[0]: value for key, value in grown.items()}, how

    def rates_by_route(self) -> tuple[dict[str, float], str]:
        counter = self.cfg.request_counter
        require(counter, "no request counter configured (monitoring.request_counter)")
        grown, how = self.growth(counter, self.cfg.route_labels)
        if not grown:
            self.absent(counter)  # else {}: not exported
        return {" ".join(k): grown[k] / self.seconds for k in sorted(grown)}, how

    def server_errors(self) -> tuple[dict[str, tuple[float, float]], str]:
        """(5xx, all) per route over the window between the scrapes (across a restart): an error answered before
        the window — a probe's, the last release's — is not this window's."""
        cfg = self.cfg
        require(cfg.request_counter, "no request counter configured (monitoring.request_counter)")
        grown, how = self.growth(cfg.request_counter, [*cfg.route_labels, cfg.status_label])
        per_route = server_errors_by_route(grown)
        require(sum(t for _, t in per_route.values()), f"{cfg.request_counter} counted no requests in the window")
        return per_route, how

    def p95_per_route(self) -> tuple[dict[str, RouteLatency], str]:
        """p95 per route of the requests answered inside the window: the growth of the histogram's buckets."""
        cfg = self.cfg
        histogram = cfg.latency_histogram
        require(histogram, "no latency histogram configured (monitoring.latency_histogram)")
        buckets, how = self.growth(f"{histogram}_bucket", [*cfg.route_labels, "le"])
        counts, _ = self.growth(f"{histogram}_count", cfg.route_labels)
        found = route_quantiles(buckets, counts)
        require(found, f"{histogram} observed no requests in the window")
        return found, f"{how} ({histogram}, bucket resolution)"

    def disks(self) -> tuple[dict[str, float], str] | None:
        """The service host's free disk: not in the service's own metrics."""
        return None


COUNTED = (
    "(increase({counter}{{{service}}}[{window}]) and {counter}{{{service}}} offset {window})"
    " or ({counter}{{{service}}} unless {counter}{{{service}}} offset {window})"
)


class PrometheusWindow:
    """The same readings as PromQL over monitoring.source.window, from a Prometheus server. Each query is shown as
    sent; a query of monitoring.source.queries replaces the default for its reading."""

    DEFAULTS = {
        # per-process limits are judged per instance (two replicas at 50 % are not one process at 100 %)
        "cpu_percent": "100 * max by (instance) (rate(process_cpu_seconds_total{{{service}}}[{window}]))",
        "memory_mb": "max by (instance) (max_over_time(process_resident_memory_bytes{{{service}}}[{window}]))"
        " / 1048576",
        "requests_by_route_status": "sum by ({labels}) (increase({counter}{{{service}}}[{window}]))",
        "p95_by_route": "1000 * histogram_quantile(0.95, sum by (le, {routes}) "
        "(rate({histogram}_bucket{{{service}}}[{window}])))",
        # the buckets, to tell a p95 above the top finite bucket (histogram_quantile answers that bucket's bound)
        "buckets_by_route": "sum by (le, {routes}) (rate({histogram}_bucket{{{service}}}[{window}]))",
        "observations_by_route": "sum by ({routes}) (increase({histogram}_count{{{service}}}[{window}]))",
        "request_rate": "sum(rate({counter}{{{service}}}[{window}]))",
        "requests_by_status": "sum by ({status}) (increase({counter}{{{service}}}[{window}]))",
        "rates_by_route": "sum by ({routes}) (rate({counter}{{{service}}}[{window}]))",
        "gauge": "max(max_over_time({name}{{{service}}}[{window}]))",
        # a count over the window across counter resets (restarts): increase() of the series that existed at its
        # start; a series born inside it counts from zero (increase() would miss its first events)
        "total": f"sum({COUNTED})",
        "totals_by": f"sum by ({{label}}) ({COUNTED})",
        "series_names": "count by (__name__) ({{{service}}})",
        # the instances that (re)started inside the window: an empty answer there is "no samples yet"
        "started_in_window": "max by (instance) (process_start_time_seconds{{{service}}}) > time() - {seconds}",
        "disk_free_percent": '100 * node_filesystem_avail_bytes{{{host},fstype!~"{pseudo}"}} '
        '/ node_filesystem_size_bytes{{{host},fstype!~"{pseudo}"}}',
        "p95_series": "1000 * histogram_quantile(0.95, sum by (le) (rate({histogram}_bucket{{{service}}}[{step}s])))",
        # its buckets, to tell the steps whose p95 is above the top finite bucket (p95_series answers its bound)
        "buckets_series": "sum by (le) (rate({histogram}_bucket{{{service}}}[{step}s]))",
    }

    def __init__(self, prometheus, source, cfg, end: float | None = None) -> None:
        self.end = time.time() if end is None else end  # every reading ends here, however long the checks take
        self.prometheus, self.source, self.cfg = prometheus.pinned(self.end), source, cfg
        self.instances = self.prometheus.require_up(source.service_selector)

    @classmethod
    def since(cls, prometheus, source, cfg, first_scrape: float) -> PrometheusWindow:
        """The window from just after the service's first scrape (a Unix time; a later scrape preceded anything it
        should count) to now. Its start holds that first sample: a counter with no sample at the range's start counts
        whole (as a series born inside the window), which would count what the service did before it was watched."""
        end = time.time()
        span = f"{max(1, int((end - first_scrape) * 1000) - 1)}ms"
        return cls(prometheus, source.model_copy(update={"window": span}), cfg, end)

    def promql(self, reading: str, service: str = "", **values) -> str:
        """The reading's query (monitoring.source.queries, else the default) for the service (or another selector)."""
        template = self.source.queries.get(reading) or self.DEFAULTS[reading]
        return template.format(service=service or self.source.service_selector, window=self.source.window, **values)

    def span(self) -> tuple[float, float]:
        """The window as Unix times: monitoring.source.window up to its end."""
        return self.end - durations.seconds(self.source.window), self.end

    @cached_property
    def restarts(self) -> list[str]:
        """The instances that (re)started inside the window, with when."""
        seconds = int(durations.seconds(self.source.window))
        found = self.prometheus.query(self.promql("started_in_window", seconds=seconds), empty_ok=True)
        return [f"{s.labels.get('instance', '?')} at {at(s.value)}" for s in found]

    def where(self, query: str) -> str:
        restarted = f"; (re)started inside the window: {', '.join(self.restarts)}" if self.restarts else ""
        return f"{query}  (Prometheus {self.prometheus.url}, {', '.join(self.instances)}){restarted}"

    def absent(self, name: str) -> None:
        """An empty answer for name: not exported (None), unless an instance (re)started inside the window — then
        there are no samples yet, which is not verified."""
        if self.restarts:
            raise NotVerified(
                f"no samples for {name} in the window yet: the service (re)started inside it "
                f"({', '.join(self.restarts)}); wait one scrape interval"
            )

    def highest(self, query: str) -> Measured:
        """A per-instance reading: the highest instance's value, named."""
        samples = self.prometheus.query(query)
        worst = max(samples, key=lambda s: s.value)
        instance = worst.labels.get("instance", "") if len(samples) > 1 or "instance" in worst.labels else ""
        return Measured(worst.value, self.where(query), instance)

    def route_of(self, sample) -> str:
        """A sample's route: its route labels' values, "METHOD route" as the checks name routes."""
        return " ".join(sample.labels.get(label, "") for label in self.cfg.route_labels)

    def cpu_percent(self) -> Measured:
        return self.highest(self.promql("cpu_percent"))

    def memory_mb(self) -> Measured:
        return self.highest(self.promql("memory_mb"))

    def request_rate(self) -> Measured:
        require(self.cfg.request_counter, "no request counter configured (monitoring.request_counter)")
        query = self.promql("request_rate", counter=self.cfg.request_counter)
        return Measured(self.prometheus.one(query), self.where(query))

    def gauge(self, name: str) -> Measured | None:
        return self.optional(self.promql("gauge", name=name), name)

    def total(self, counter: str) -> Measured | None:
        """A counter's count over the window, across resets."""
        return self.optional(self.promql("total", counter=counter), counter)

    def optional(self, query: str, name: str) -> Measured | None:
        """A query whose empty answer means "not exported" (a failure of the item) — or, right after a restart,
        "no samples yet" (not verified)."""
        samples = self.prometheus.query(query, empty_ok=True)
        if not samples:
            self.absent(name)
            return None
        return Measured(samples[0].value, self.where(query))

    def totals_by(self, counter: str, label: str) -> tuple[dict[str, float], str]:
        query = self.promql("totals_by", counter=counter, label=label)
        samples = self.prometheus.query(query, empty_ok=True)
        return {s.labels.get(label, ""): s.value for s in samples}, self.where(query)

    def rates_by_route(self) -> tuple[dict[str, float], str]:
        cfg = self.cfg
        require(cfg.request_counter, "no request counter configured (monitoring.request_counter)")
        query = self.promql("rates_by_route", routes=", ".join(cfg.route_labels), counter=cfg.request_counter)
        samples = self.prometheus.query(query, empty_ok=True)
        if not samples:
            self.absent(cfg.request_counter)  # else {}: not exported
        return {self.route_of(s): s.value for s in samples}, self.where(query)

    def server_errors(self) -> tuple[dict[str, tuple[float, float]], str]:
        cfg = self.cfg
        require(cfg.request_counter, "no request counter configured (monitoring.request_counter)")
        labels = ", ".join([*cfg.route_labels, cfg.status_label])
        query = self.promql("requests_by_route_status", labels=labels, counter=cfg.request_counter)
        per_route: dict[str, tuple[float, float]] = {}
        for sample in self.prometheus.query(query):
            route = self.route_of(sample)
            bad, total = per_route.get(route, (0.0, 0.0))
            is_5xx = sample.labels.get(cfg.status_label, "").startswith("5")
            per_route[route] = (bad + (sample.value if is_5xx else 0), total + sample.value)
        require(sum(t for _, t in per_route.values()), f"no requests in the window: {query}")
        return per_route, self.where(query)

    PSEUDO_FILESYSTEMS = "tmpfs|devtmpfs|ramfs|squashfs|nsfs|autofs"

    def collection(self, counters: list[str]) -> Collection:
        """The families Prometheus holds for the service, and each counter's growth over the window (the real
        traffic's)."""
        names = self.promql("series_names")
        families = {family_of(s.labels.get("__name__", "")) for s in self.prometheus.query(names)}
        grown = {counter: getattr(self.total(counter), "value", None) for counter in counters}
        traffic = f"the real traffic over {self.source.window}"
        return Collection(families, grown, f"over {self.source.window}: {self.where(names)}", traffic)

    def disks(self) -> tuple[dict[str, float], str] | None:
        """Free disk per mount point of the service host, from node_exporter (None: no host_selector)."""
        if not self.source.host_selector:
            return None
        query = self.promql("disk_free_percent", host=self.source.host_selector, pseudo=self.PSEUDO_FILESYSTEMS)
        free = {
            f"{s.labels.get('instance', '')} {s.labels.get('mountpoint', '')}": s.value
            for s in self.prometheus.query(query)
        }
        return free, self.where(query)

    def p95_per_route(self) -> tuple[dict[str, RouteLatency], str]:
        cfg = self.cfg
        require(cfg.latency_histogram, "no latency histogram configured (monitoring.latency_histogram)")
        routes = ", ".join(cfg.route_labels)
        query = self.promql("p95_by_route", routes=routes, histogram=cfg.latency_histogram)
        counted = self.promql("observations_by_route", routes=routes, histogram=cfg.latency_histogram)
        counts = {self.route_of(s): s.value for s in self.prometheus.query(counted, empty_ok=True)}
        found = {
            self.route_of(s): RouteLatency(s.value, counts.get(self.route_of(s), 0.0))
            for s in self.prometheus.query(query)
        }
        bucketed = self.promql("buckets_by_route", routes=routes, histogram=cfg.latency_histogram)
        buckets: dict[str, dict[float, float]] = {}
        for s in self.prometheus.query(bucketed, empty_ok=True):
            buckets.setdefault(self.route_of(s), {})[float(s.labels.get("le", "nan"))] = s.value
        for route, latency in found.items():
            p95 = quantile(buckets.get(route, {}), 0.95)
            if p95 is not None and p95.above:
                latency.p95_ms, latency.above = p95.value * 1000, True
        return found, f"{self.where(query)}; above the top bucket from {bucketed}"


@dataclass
class Traffic:
    """The request rate the service's counter shows over the window, and the rate of relcheck's own requests inside
    it: the real traffic lies between the two's difference and the counted rate (the service may not count all of
    relcheck's requests, health often is not). Judged against monitoring.min_rps / max_rps."""

    counted: float
    own: float
    how: str
    min_rps: float | None
    max_rps: float | None

    @property
    def low(self) -> float:
        return max(0.0, self.counted - self.own)

    @property
    def bounds(self) -> str:
        low, high = ("-" if b is None else f"{b:g}" for b in (self.min_rps, self.max_rps))
        return f"{low}..{high} requests/s"

    @property
    def problem(self) -> str:
        """A bound the real traffic breaks whatever relcheck's share of the counted requests is."""
        if self.min_rps is not None and self.counted < self.min_rps:
            return f"{self.counted:.2f} requests/s counted, relcheck's own included, below {self.bounds}"
        if self.max_rps is not None and self.low > self.max_rps:
            return f"{self.low:.2f} requests/s besides relcheck's own, above {self.bounds}"
        return ""

    @property
    def unverified(self) -> str:
        """No bound configured, or one the real traffic may or may not break."""
        if self.min_rps is None and self.max_rps is None:
            return "no request-rate bounds configured (monitoring.min_rps / max_rps): normal traffic is not defined"
        if (self.min_rps is not None and self.low < self.min_rps) or (
            self.max_rps is not None and self.counted > self.max_rps
        ):
            return (
                f"real traffic {self.low:.2f}..{self.counted:.2f} requests/s ({self.own:.2f}/s of the counted may be "
                f"relcheck's own requests): cannot tell it against {self.bounds} — no traffic but relcheck's, or "
                "too little besides it"
            )
        return ""


def traffic(window: ScrapeWindow | PrometheusWindow, sent_between, cfg, scrapes_per_s: float = 0.0) -> Traffic:
    """The window's request rate and relcheck's own share of it (sent_between(start, end): its requests then;
    scrapes_per_s: the rate of a Prometheus relcheck started itself); cfg: [monitoring]."""
    measured = window.request_rate()
    start, end = window.span()
    own = sent_between(start - CLOCK_SLACK_S, end) / max(end - start, 1e-9) + scrapes_per_s
    return Traffic(measured.value, own, measured.how, cfg.min_rps, cfg.max_rps)


@dataclass
class Canary:
    """The new release's p95 latency series against the previous release's (baseline instances), judged like the
    performance benchmark: Mann-Whitney on the samples plus the interval of the median ratio; and their 5xx ratios
    over the window (Fisher's exact test)."""

    current_query: str
    baseline_query: str
    comparison: judge.Comparison | None = None  # None when it could not be made
    unavailable: str = ""  # why not (no points, no series): the comparison is not verified
    capped: str = ""  # the steps whose p95 is above the top finite bucket, each release's ("": none)
    errors_query: str = ""  # the error ratio of each release over the window ...
    errors: judge.ErrorComparison | None = None
    errors_unavailable: str = ""

    @staticmethod
    def _errors_shown(counts: tuple[float, float]) -> str:
        return f"{counts[0]:.0f} of {counts[1]:.0f} ({counts[0] / counts[1]:.2%})"

    def errors_facts(self) -> dict:
        found, shown = self.errors, self._errors_shown
        compared = (
            {"new": shown(found.current), "previous": shown(found.baseline), "p-value": f"{found.p_value:.3g}"}
            if found
            else {"not compared": self.errors_unavailable}
        )
        return {"query (each release's selector)": self.errors_query, **compared}

    @property
    def errors_unverified(self) -> str:
        return "" if self.errors else f"the releases' error ratios are not compared: {self.errors_unavailable}"

    @property
    def errors_problem(self) -> str:
        found = self.errors
        if not found or found.verdict != "fail":
            return ""
        shown = self._errors_shown
        return f"more 5xx than the previous release: {shown(found.current)} vs {shown(found.baseline)}"

    def latency_facts(self) -> dict:
        found = self.comparison
        compared = (
            {
                "medians ms": f"{found.current_median:.1f} vs {found.baseline_median:.1f}",
                "ratio (interval)": f"{found.ratio:.2f} ({found.ratio_low:.2f}..{found.ratio_high:.2f})",
                "p-value": f"{found.p_value:.3g}",
                "verdict": found.verdict,
            }
            if found
            else {"not compared": self.unavailable}
        )
        capped = {"above the top bucket": self.capped} if self.capped else {}
        return {"new": self.current_query, "previous": self.baseline_query, **compared, **capped}

    @property
    def latency_unverified(self) -> str:
        found = self.comparison
        if not found:
            return f"the releases are not compared: {self.unavailable}"
        if found.verdict == "inconclusive":
            return f"too noisy to compare the releases (ratio {found.ratio_low:.2f}..{found.ratio_high:.2f})"
        return ""

    @property
    def latency_problem(self) -> str:
        found = self.comparison
        if not found or found.verdict != "fail":
            return ""
        at_least = " at least" if self.capped else ""
        return f"slower than the previous release: p95 x{found.ratio:.2f}{at_least}" + (
            f" ({self.capped})" if self.capped else ""
        )

    @property
    def latency_warning(self) -> str:
        found = self.comparison
        if not found or found.verdict != "warn":
            return ""
        return f"slower than the previous release, within the critical limit: p95 x{found.ratio:.2f}"


def canary(window: PrometheusWindow, baseline_cfg) -> Canary | None:
    """None when no baseline instances are configured (monitoring.source.baseline_selector)."""
    if not window.source.baseline_selector:
        return None
    return error_canary(window, baseline_cfg, latency_canary(window, baseline_cfg))


def steps_above(window: PrometheusWindow, selector: str, start: float, end: float) -> tuple[int, int, float]:
    """Of the p95 series' steps, those above the top finite bucket (histogram_quantile answers its bound there):
    (steps above, steps, that bound in ms)."""
    source, cfg = window.source, window.cfg
    query = window.promql("buckets_series", service=selector, histogram=cfg.latency_histogram, step=int(source.step_s))
    at: dict[float, dict[float, float]] = {}
    for labels, points in window.prometheus.range_series(query, start, end, source.step_s):
        for t, value in points:
            at.setdefault(t, {})[float(labels.get("le", "nan"))] = value
    quantiles = [q for q in (quantile(buckets, 0.95) for buckets in at.values()) if q is not None]
    above = [q.value * 1000 for q in quantiles if q.above]
    return len(above), len(quantiles), max(above, default=0.0)


def latency_canary(window: PrometheusWindow, baseline_cfg) -> Canary:
    """The releases' p95 series over the window (`p95_series` at step_s), compared like the benchmark. A step whose
    p95 is above the top finite bucket is only known to be more than its bound (histogram_quantile answers the
    bound): a new release's such steps leave a comparison that does not fail not verified (a fail stands, its real
    steps being only slower); the previous release's leave a fail or warn not verified (a pass stands)."""
    source, cfg = window.source, window.cfg
    require(cfg.latency_histogram, "no latency histogram configured (monitoring.latency_histogram)")
    selectors = (source.service_selector, source.baseline_selector)
    queries = [
        window.promql("p95_series", service=selector, histogram=cfg.latency_histogram, step=int(source.step_s))
        for selector in selectors
    ]
    end = time.time()
    start = end - durations.seconds(source.window)
    try:
        current, baseline = (window.prometheus.range(q, start, end, source.step_s) for q in queries)
        (new_above, new_steps, new_bound), (old_above, _, old_bound) = (
            steps_above(window, selector, start, end) for selector in selectors
        )
    except NotVerified as exc:
        return Canary(queries[0], queries[1], unavailable=str(exc))
    if min(len(current), len(baseline)) < 5:
        return Canary(queries[0], queries[1], unavailable="fewer than 5 points per release in the window")
    found = judge.compare(
        "p95 latency, all routes",
        baseline,
        current,
        baseline_cfg.confidence,
        baseline_cfg.allowed_increase,
        baseline_cfg.critical_increase,
    )
    capped = [f"new release {new_above} of {new_steps} steps > {new_bound:g} ms"] if new_above else []
    capped += [f"previous release {old_above} steps > {old_bound:g} ms"] if old_above else []
    canary = Canary(queries[0], queries[1], found, capped="; ".join(capped))
    if new_above and found.verdict != "fail":  # a fail stands: the real steps are only slower
        canary.comparison, canary.unavailable = None, f"p95 above the top histogram bucket ({canary.capped})"
    elif old_above and found.verdict in ("fail", "warn"):
        canary.comparison = None
        canary.unavailable = f"the previous release's p95 above the top histogram bucket ({canary.capped})"
    return canary


def error_canary(window: PrometheusWindow, baseline_cfg, found: Canary, min_requests: int = 20) -> Canary:
    """The releases' 5xx ratios over the window, compared (needs min_requests on each side)."""
    cfg, source = window.cfg, window.source
    if not cfg.request_counter:
        found.errors_unavailable = "no request counter configured (monitoring.request_counter)"
        return found
    counts, by_status = [], {"status": cfg.status_label, "counter": cfg.request_counter}
    for selector in (source.service_selector, source.baseline_selector):
        samples = window.prometheus.query(window.promql("requests_by_status", service=selector, **by_status), True)
        bad = sum(s.value for s in samples if s.labels.get(cfg.status_label, "").startswith("5"))
        counts.append((bad, sum(s.value for s in samples)))
    found.errors_query = window.promql("requests_by_status", **by_status)
    if min(total for _, total in counts) < min_requests:
        found.errors_unavailable = f"fewer than {min_requests} requests per release in the window"
        return found
    tolerance = source.canary_error_increase
    found.errors = judge.compare_error_ratios(counts[0], counts[1], baseline_cfg.confidence, tolerance)
    return found
