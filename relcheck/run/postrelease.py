"""Post-release documents the software can write itself: deployment notes from this release's deploy record, and
a status report from the release's complete phase runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from relcheck.core import records
from relcheck.core.config import Config
from relcheck.core.files import write_atomic

REPORTED_PHASES = ("pre_release", "pre_deploy", "post_deploy")  # the release's path to production


@dataclass
class DeploymentNotes:
    path: Path
    text: str
    problems: list[str]  # the deploy stopped early, a step failed


def deployment_notes(cfg: Config, deployed: dict) -> DeploymentNotes:
    """Notes of the deploy record: each step of the procedure with its start, end, exit statuses and output digest."""
    lines = [
        f"# Deployment notes: {deployed['product']} {deployed['version']}",
        "",
        f"- Deployed {deployed['ref']} from {deployed['started']} to {deployed['finished']}: "
        f"{'completed' if deployed['ok'] else 'stopped at ' + deployed['failed_step']}",
        f"- Backup: {deployed.get('backup', {}).get('path', 'none')} "
        f"(sha256 {deployed.get('backup', {}).get('sha256', '-')})",
        "",
        "| Step | Started | Finished | Exit statuses | Output sha256 | Outcome |",
        "|------|---------|----------|---------------|---------------|---------|",
    ]
    for s in deployed["steps"]:
        commands = s.get("commands", [])
        lines.append(
            f"| {s['name']} | {s.get('started', '-')} | {s.get('finished', '-')} | "
            f"{', '.join(str(c['exit']) for c in commands) or '-'} | "
            f"{', '.join(c['output_sha256'][:16] for c in commands) or '-'} | "
            f"{'ok' if s['ok'] else 'FAILED'}: {s['detail']} |"
        )
    problems = [f"step {s['name']} failed: {s['detail']}" for s in deployed["steps"] if not s["ok"]]
    if not deployed["ok"] and not problems:
        problems.append(f"the deploy stopped early ({deployed.get('failed_step') or 'no step completed'})")
    path = records.release_dir(cfg) / "deployment-notes.md"
    text = "\n".join(lines) + "\n"
    write_atomic(path, text)
    return DeploymentNotes(path, text, problems)


@dataclass
class StatusReport:
    path: Path
    text: str
    verdicts: dict[str, str | None] = field(default_factory=dict)  # phase -> verdict of its newest complete run


def complete_runs(cfg: Config) -> dict[str, dict]:
    """The newest complete (not partial, not interrupted) run of each phase label."""
    found: dict[str, dict] = {}
    for m in records.manifests(cfg):  # newest first
        if not m["run"].get("partial") and not m["run"].get("interrupted"):
            found.setdefault(m["run"]["label"], m)
    return found


def status_report(cfg: Config) -> StatusReport:
    runs = complete_runs(cfg)
    phases = [*REPORTED_PHASES, *sorted(set(runs) - set(REPORTED_PHASES))]
    verdicts = {phase: runs[phase]["verdict"] if phase in runs else None for phase in phases}
    lines = [
        f"# Status report: {cfg.release.product} {cfg.release.version} ({cfg.release.release_id})",
        "",
        "| Phase | Finished | Verdict | Pass | Fail | Not verified | Pending |",
        "|-------|----------|---------|------|------|--------------|---------|",
    ]
    for phase in phases:
        m = runs.get(phase)
        if not m:
            lines.append(f"| {phase} | - | no complete run | | | | |")
            continue
        c = m["counts"]
        lines.append(
            f"| {phase} | {m['run']['finished']} | {m['verdict']} | {c.get('pass', 0)} | "
            f"{c.get('fail', 0)} | {c.get('not verified', 0)} | {c.get('pending attestation', 0)} |"
        )
    open_items = {
        f"{i['section'].split(' / ')[-1]}: {i['item']} ({i['status']})"
        for m in runs.values()
        for i in m["items"]
        if i["checks"] and i["status"] in ("fail", "not verified", "pending attestation")
    }
    lines += ["", "## Open items", "", *(f"- {item}" for item in sorted(open_items)), *(["- none"] * (not open_items))]
    path = records.release_dir(cfg) / "status-report.md"
    text = "\n".join(lines) + "\n"
    write_atomic(path, text)
    return StatusReport(path, text, verdicts)
