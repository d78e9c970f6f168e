"""A Prometheus server's HTTP API (/api/v1/query): instant PromQL, each answer a list of (labels, value). Anything
that is not an answer with data is not verified, never a pass: Prometheus down or unreachable, a refused query, no
series (a missing family, a selector matching nothing, stale series), NaN.

    prometheus = Prometheus("http://prometheus:9090")
    prometheus.query('rate(process_cpu_seconds_total{job="kundli"}[10m])')  # [Sample(labels, value)]
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import requests

from relcheck.core.secrets import redact
from relcheck.core.statuses import NotVerified


@dataclass
class Sample:
    labels: dict[str, str]
    value: float


class Prometheus:
    def __init__(
        self, url: str, timeout: float = 10, token: str = "", username: str = "", password: str = "", ca_file=None
    ) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif username:
            self.session.auth = (username, password)
        if ca_file:
            self.session.verify = str(ca_file)
        self.evaluated_at: float | None = None  # instant queries at this Unix time (None: Prometheus' now)

    def pinned(self, at: float) -> Prometheus:
        """The same server with every instant query evaluated at `at` (one window's readings agree)."""
        pinned = copy.copy(self)
        pinned.evaluated_at = at
        return pinned

    def query(self, promql: str, empty_ok: bool = False) -> list[Sample]:
        """The answer's samples; no series is not verified unless empty_ok (then [])."""
        at = {} if self.evaluated_at is None else {"time": f"{self.evaluated_at:.3f}"}
        data = self.api("query", {"query": promql, **at})
        result = data["result"]
        if data.get("resultType") == "scalar":
            result = [{"metric": {}, "value": result}]
        samples = [Sample(r["metric"], float(r["value"][1])) for r in result]
        samples = [s for s in samples if not math.isnan(s.value)]
        if not samples and not empty_ok:
            raise NotVerified(f"no data: Prometheus has no series for {promql}")
        return samples

    def range(self, promql: str, start: float, end: float, step: float) -> list[float]:
        """The values of a one-series query at each step from start to end (unix seconds), NaN left out."""
        series = self.range_series(promql, start, end, step)
        if len(series) != 1:
            raise NotVerified(f"no data: {promql} gives {len(series)} series over the range, not one")
        return [v for _, v in series[0][1] if not math.isnan(v)]

    def range_series(
        self, promql: str, start: float, end: float, step: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """Every series of a query from start to end (unix seconds): its labels and (time, value) at each step."""
        found = self.api("query_range", {"query": promql, "start": str(start), "end": str(end), "step": str(step)})
        return [(r["metric"], [(float(t), float(v)) for t, v in r["values"]]) for r in found["result"]]

    def api(self, endpoint: str, params: dict[str, str]) -> dict:
        """The `data` of an answer of /api/v1/<endpoint>; anything else is not verified, saying why."""
        try:
            answer = self.session.get(f"{self.url}/api/v1/{endpoint}", params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise NotVerified(f"Prometheus at {self.url} is unreachable: {redact(type(exc).__name__)}") from None
        try:
            body = answer.json()
        except ValueError:
            raise NotVerified(f"Prometheus at {self.url} answered HTTP {answer.status_code}, not its API") from None
        if answer.status_code != 200 or body.get("status") != "success":
            raise NotVerified(f"Prometheus refused {params['query']}: {body.get('error', answer.status_code)}")
        return body["data"]

    def one(self, promql: str) -> float:
        """The single value of a query that aggregates to one series."""
        samples = self.query(promql)
        if len(samples) != 1:
            raise NotVerified(f"{promql} gives {len(samples)} series, not one (narrow the selector)")
        return samples[0].value

    def require_up(self, selector: str) -> list[str]:
        """The instances the selector matches, all up; a target that is down is not measured."""
        samples = self.query(f"up{{{selector}}}")
        down = [s.labels.get("instance", "?") for s in samples if s.value != 1]
        if down:
            raise NotVerified(f"Prometheus cannot scrape {', '.join(down)} (up == 0): its metrics are stale")
        return [s.labels.get("instance", "?") for s in samples]


def of_config(cfg) -> Prometheus:
    """The Prometheus server of monitoring.source (its CA file relative to the config)."""
    source = cfg.monitoring.source
    ca_file = cfg.resolve(source.ca_file) if source.ca_file else None
    return Prometheus(source.url, source.timeout_s, source.bearer_token, source.username, source.password, ca_file)
