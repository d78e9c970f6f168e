"""The results history: what earlier runs of each release measured, kept beside the reports
(reports/history/<product>/<version>/), so a later release can be compared with an earlier one."""

from __future__ import annotations

import json
import random
from pathlib import Path

from relcheck.core import records
from relcheck.core.files import write_json
from relcheck.core.records import history_dir
from relcheck.probes.loadtest import LoadResult

KEEP_SAMPLES = 5000


def save_load(reports: Path, product: str, version: str, result: LoadResult, routes=None, note: str = "") -> Path:
    """Keep a load run's per-route latency samples (bounded) as this version's performance record."""
    routes = result.routes if routes is None else routes
    path = history_dir(reports, product, version) / "load.json"
    write_json(
        path,
        {
            "format": "relcheck-load-history/1",
            "version": version,
            "note": note,
            "finished": result.finished,
            "routes": {
                name: {
                    "count": s.count,
                    "failures": s.failures,
                    "p50_ms": s.p(50),
                    "p95_ms": s.p(95),
                    "p99_ms": s.p(99),
                    "samples": random.sample(s.samples, min(len(s.samples), KEEP_SAMPLES)),
                }
                for name, s in routes.items()
            },
        },
    )
    return path


def load_samples(reports: Path, product: str, version: str) -> dict[str, list[float]] | None:
    path = history_dir(reports, product, version) / "load.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return {name: route["samples"] for name, route in data.get("routes", {}).items()}


def save_stress(reports: Path, product: str, version: str, capacity: float) -> Path:
    """Keep a stress run's capacity (req/s with the SLA held) as this version's record."""
    path = history_dir(reports, product, version) / "stress.json"
    write_json(path, {"format": "relcheck-stress-history/1", "version": version, "capacity_rps": capacity})
    return path


def stress_capacity(reports: Path, product: str, version: str) -> float | None:
    path = history_dir(reports, product, version) / "stress.json"
    return json.loads(path.read_text())["capacity_rps"] if version and path.is_file() else None


def trend(
    reports: Path, product: str, previous_version: str, version: str, label: str, counts: dict[str, int]
) -> dict | None:
    """This run against the same run of the previous release: item counts, and p95 per route from the history."""
    if not previous_version:
        return None
    before = reports / f"{product}-{previous_version}" / label / "manifest.json"
    old_counts = json.loads(before.read_text())["counts"] if before.is_file() else None
    p95 = {}
    old, new = (history_dir(reports, product, v) / "load.json" for v in (previous_version, version))
    if old.is_file() and new.is_file():
        old_routes, new_routes = json.loads(old.read_text())["routes"], json.loads(new.read_text())["routes"]
        p95 = {
            route: [old_routes.get(route, {}).get("p95_ms"), new_routes.get(route, {}).get("p95_ms")]
            for route in sorted(set(old_routes) | set(new_routes))
        }
    if old_counts is None and not p95:
        return None
    return {
        "previous": previous_version,
        "counts": {status: [old_counts.get(status, 0) if old_counts else None, n] for status, n in counts.items()},
        "p95_ms": p95,
    }


def archive_run(run_dir: Path) -> Path | None:
    """Move a finished run's files aside (with their sign-offs) before a new run of the same phase replaces them."""
    manifest = run_dir / "manifest.json"
    if not manifest.is_file():
        return None
    finished = json.loads(manifest.read_text())["run"]["finished"].replace(":", "")
    target = run_dir / "history" / finished
    target.mkdir(parents=True, exist_ok=True)
    for name in ("manifest.json", "evidence.json", "report.html", "junit.xml", "signoffs", records.STATEMENT):
        if (run_dir / name).exists():
            (run_dir / name).rename(target / name)
    return target


def timeline(run_dir: Path, now: dict) -> dict[str, list[list[str]]]:
    """Each checked item's status over the runs of this phase: the archived runs, the run about to be archived and
    this one (`now`, its manifest), oldest first: {"<section> :: <item>": [[finished, status], ...]}."""
    earlier = [json.loads(p.read_text()) for p in sorted(run_dir.glob("history/*/manifest.json"))]
    if (run_dir / "manifest.json").is_file():
        earlier.append(json.loads((run_dir / "manifest.json").read_text()))
    found: dict[str, list[list[str]]] = {}
    for manifest in sorted(earlier, key=lambda m: m["run"]["finished"]) + [now]:
        for item in manifest["items"]:
            if item["checks"]:
                key = f"{item['section']} :: {item['item']}"
                found.setdefault(key, []).append([manifest["run"]["finished"], item["status"]])
    return found
