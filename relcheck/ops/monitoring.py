"""`relcheck monitor --for 24h --every 5m`: the monitoring phase re-run on a schedule through the first hours and
days after a release. Each run lands in the release's history (the monitoring report shows every item's timeline);
a rollback trigger that fires stops the watch with exit 3; Ctrl-C stops it with the interrupted run's report
written."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from relcheck.core.statuses import Verdict
from relcheck.run import runner

ROLLBACK_EXIT = 3


def watch(config: Path, duration_s: float, every_s: float, log=print, most_runs: int = 0) -> int:
    """Run the monitoring phase now and every every_s until duration_s has passed (or after most_runs runs, when
    given); exit 0 when the last run said PROCEED, 3 as soon as one says ROLLBACK, 1 otherwise."""
    deadline, runs, verdict = time.monotonic() + duration_s, 0, "no run"
    while True:
        started = time.monotonic()
        outcome = runner.run_checks(config, "monitoring", timeout=max(every_s, 1800))
        runs, verdict = runs + 1, outcome.verdict or "no result"
        report = outcome.run_dir / "report.html" if outcome.run_dir else "no report (see the output above)"
        log(
            f"[{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S}Z] monitoring run {runs}: {verdict} "
            f"in {outcome.seconds:.0f} s — {report}"
        )
        for reason in outcome.manifest.get("verdict_reasons", [])[:3]:
            log(f"    {reason}")
        if verdict == Verdict.ROLLBACK:
            log("a rollback trigger fired: stopping (relcheck rollback when the owner decides)")
            return ROLLBACK_EXIT
        pause = max(0.0, every_s - (time.monotonic() - started))
        if time.monotonic() + pause >= deadline or runs == most_runs:
            return 0 if verdict == Verdict.PROCEED else 1
        time.sleep(pause)
