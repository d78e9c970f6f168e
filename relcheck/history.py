"""The results history: what earlier runs of each release measured, kept beside the reports
(reports/history/<product>/<version>/), so a later release can be compared with an earlier one."""

from __future__ import annotations

import json
import random
from pathlib import Path

from .files import write_json
from .load import LoadResult

KEEP_SAMPLES = 5000


def release_dir(reports: Path, product: str, version: str) -> Path:
    return reports / "history" / product / version


def save_load(reports: Path, product: str, version: str, result: LoadResult, routes=None, note: str = "") -> Path:
    """Keep a load run's per-route latency samples (bounded) as this version's performance record."""
    routes = result.routes if routes is None else routes
    path = release_dir(reports, product, version) / "load.json"
    write_json(path, {"format": "relcheck-load-history/1", "version": version, "note": note,
                      "finished": result.finished, "routes": {
                          name: {"count": s.count, "failures": s.failures, "p50_ms": s.p(50), "p95_ms": s.p(95),
                                 "p99_ms": s.p(99), "samples": random.sample(s.samples, min(len(s.samples), KEEP_SAMPLES))}
                          for name, s in routes.items()}})
    return path


def load_samples(reports: Path, product: str, version: str) -> dict[str, list[float]] | None:
    path = release_dir(reports, product, version) / "load.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return {name: route["samples"] for name, route in data.get("routes", {}).items()}
