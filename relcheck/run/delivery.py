"""`relcheck history`: DORA's delivery metrics from the release record in reports/, and the Prometheus textfile of
them and of each gate's last verdict per item.

A deployment is a release whose deploy record is ok. It failed when a ROLLBACK decision (a complete post-deploy or
monitoring run) or a rollback record follows it; it recovered at the first complete post-rollback run with verdict
READY, or the first PROCEED decision, after the failure. Deployment frequency is deployments per day between the first
and the last one (unknown with fewer than two); no figure is ever made up from no data.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from relcheck.core.errors import RelcheckError
from relcheck.core.statuses import Verdict
from relcheck.run.phases import run_phases


def when(text: str, where: Path) -> datetime:
    """A record's time (relcheck writes ISO 8601 with an offset); anything else is a one-line error naming the file."""
    try:
        found = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        found = None
    if found is None or found.tzinfo is None:
        raise RelcheckError(f"{where}: {text!r} is not an ISO 8601 time with an offset")
    return found


def read_json(path: Path) -> dict | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def complete_runs(release_dir: Path) -> list[dict]:
    """Every complete run of a release (with a verdict), the archived ones too, oldest first; each run's finish time
    parsed once (`_finished`)."""
    paths = [*release_dir.glob("*/manifest.json"), *release_dir.glob("*/history/*/manifest.json")]
    runs = []
    for path in paths:
        m = read_json(path)
        if m and isinstance(m.get("run"), dict) and m["run"].get("finished") and m.get("verdict"):
            runs.append({**m, "_finished": when(m["run"]["finished"], path)})
    return sorted((m for m in runs if not m["run"].get("partial")), key=lambda m: m["_finished"])


@dataclass
class Deployment:
    release: str
    deployed: datetime
    failed: datetime | None = None
    why: str = ""  # "ROLLBACK decision" or "rollback"
    recovered: datetime | None = None

    @property
    def recovery_s(self) -> float | None:
        return (self.recovered - self.failed).total_seconds() if self.failed and self.recovered else None


def deployment(release_dir: Path) -> Deployment | None:
    deploy = read_json(release_dir / "deploy" / "record.json")
    if not deploy or not deploy.get("ok") or not deploy.get("finished"):
        return None
    found = Deployment(release_dir.name, when(deploy["finished"], release_dir / "deploy" / "record.json"))
    runs = [m for m in complete_runs(release_dir) if m["_finished"] >= found.deployed]
    failures = [(m["_finished"], "ROLLBACK decision") for m in runs if decision(m) == Verdict.ROLLBACK]
    rollback = read_json(release_dir / "rollback" / "record.json")
    if rollback and rollback.get("started"):
        started = when(rollback["started"], release_dir / "rollback" / "record.json")
        if started >= found.deployed:
            failures.append((started, "rollback"))
    if failures:
        found.failed, found.why = min(failures)
        found.recovered = next((m["_finished"] for m in runs if recovers(m, found.failed)), None)
    return found


def decision(manifest: dict) -> str:
    return (manifest.get("decision") or {}).get("name", "")


def recovers(manifest: dict, failed: datetime) -> bool:
    after = manifest["_finished"] > failed
    post_rollback = (
        "post_rollback" in run_phases(manifest["run"].get("markexpr", "")) and manifest["verdict"] == Verdict.READY
    )
    return after and (post_rollback or decision(manifest) == Verdict.PROCEED)


def release_dirs(reports: Path) -> list[Path]:
    return sorted(d for d in reports.iterdir() if d.is_dir() and d.name != "history") if reports.is_dir() else []


@dataclass
class Dora:
    deployments: list[Deployment] = field(default_factory=list)

    @property
    def failed(self) -> list[Deployment]:
        return [d for d in self.deployments if d.failed]

    @property
    def frequency_per_day(self) -> float | None:
        times = sorted(d.deployed for d in self.deployments)
        span = (times[-1] - times[0]).total_seconds() / 86400 if len(times) > 1 else 0
        return len(times) / span if span else None

    @property
    def change_failure_rate(self) -> float | None:
        return len(self.failed) / len(self.deployments) if self.deployments else None

    @property
    def recovery_times_s(self) -> list[float]:
        return [d.recovery_s for d in self.failed if d.recovery_s is not None]

    @property
    def median_recovery_s(self) -> float | None:
        return statistics.median(self.recovery_times_s) if self.recovery_times_s else None


def dora(reports: Path) -> Dora:
    return Dora([d for d in map(deployment, release_dirs(reports)) if d])


def figure(value: float | None, unit: str = "", scale: float = 1) -> str:
    return "unknown" if value is None else f"{value * scale:.2f}{unit}"


def lines(found: Dora) -> list[str]:
    out = [
        f"deployments: {len(found.deployments)}",
        f"deployment frequency: {figure(found.frequency_per_day, ' per day')}"
        + (" (fewer than two deployments)" if found.frequency_per_day is None else ""),
        f"change failure rate: {figure(found.change_failure_rate, ' %', 100)} "
        f"({len(found.failed)} of {len(found.deployments)} followed by a ROLLBACK decision or a rollback)",
        f"failed deployment recovery time (median): {figure(found.median_recovery_s, ' min', 1 / 60)} "
        f"({len(found.recovery_times_s)} recovered of {len(found.failed)})",
    ]
    for d in found.deployments:
        state = f"failed ({d.why}) {d.failed.isoformat()}, " if d.failed else ""
        if d.failed:
            state += f"recovered after {figure(d.recovery_s, ' min', 1 / 60)}" if d.recovered else "not recovered"
        out.append(f"  {d.release}: deployed {d.deployed.isoformat()}" + (f", {state}" if state else ""))
    return out


def registry(reports: Path) -> CollectorRegistry:
    """The DORA figures (those that are known) and each gate's last verdict and item statuses, per release."""
    found, metrics = dora(reports), CollectorRegistry()
    known = {
        "relcheck_deployments": ("deployments in the release record", len(found.deployments)),
        "relcheck_failed_deployments": ("deployments followed by a ROLLBACK decision or a rollback", len(found.failed)),
        "relcheck_deployment_frequency_per_day": ("deployments per day", found.frequency_per_day),
        "relcheck_change_failure_ratio": ("failed deployments / deployments", found.change_failure_rate),
        "relcheck_recovery_time_median_seconds": ("ROLLBACK to post-rollback PROCEED, median", found.median_recovery_s),
    }
    for name, (documentation, value) in known.items():
        if value is not None:
            Gauge(name, documentation, registry=metrics).set(value)
    recovery = Gauge(
        "relcheck_recovery_time_seconds", "a failed deployment's recovery time", ["release"], registry=metrics
    )
    for d in found.failed:
        if d.recovery_s is not None:
            recovery.labels(d.release).set(d.recovery_s)
    verdicts = Gauge(
        "relcheck_gate_verdict", "each gate's last verdict (1)", ["release", "gate", "verdict"], registry=metrics
    )
    items = Gauge("relcheck_item_status", "each item's status at its gate's last run (1)",
                  ["release", "gate", "item", "status"], registry=metrics)  # fmt: skip
    for release_dir in release_dirs(reports):
        last = {m["run"]["label"]: m for m in complete_runs(release_dir)}  # oldest first: the last one stays
        for gate, manifest in sorted(last.items()):
            verdicts.labels(release_dir.name, gate, manifest["verdict"]).set(1)
            for item in (i for i in manifest.get("items", []) if i.get("checks")):  # the items this gate checked
                items.labels(release_dir.name, gate, f"{item['section']} :: {item['item']}", item["status"]).set(1)
    return metrics


def write_prometheus(reports: Path, path: Path) -> None:
    write_to_textfile(str(path), registry(reports))
