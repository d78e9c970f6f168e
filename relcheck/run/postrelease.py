"""Post-release documents the software can write itself: deployment notes from the deploy record, and a status
report from every run of the release."""

from __future__ import annotations

from pathlib import Path

from relcheck.core import records
from relcheck.core.config import Config
from relcheck.core.files import write_atomic


def deployment_notes(cfg: Config) -> Path | None:
    deployed = records.read(records.deploy_record_path(cfg))
    if not deployed:
        return None
    lines = [
        f"# Deployment notes: {deployed['product']} {deployed['version']}",
        "",
        f"- Deployed {deployed['ref']} from {deployed['started']} to {deployed['finished']}: "
        f"{'completed' if deployed['ok'] else 'stopped at ' + deployed['failed_step']}",
        f"- Backup: {deployed.get('backup', {}).get('path', 'none')} "
        f"(sha256 {deployed.get('backup', {}).get('sha256', '-')})",
        "",
        "| Step | Seconds | Outcome |",
        "|------|---------|---------|",
    ]
    lines += [
        f"| {s['name']} | {s['seconds']:.1f} | {'ok' if s['ok'] else 'FAILED'}: {s['detail']} |"
        for s in deployed["steps"]
    ]
    path = records.release_dir(cfg) / "deployment-notes.md"
    write_atomic(path, "\n".join(lines) + "\n")
    return path


def status_report(cfg: Config) -> Path | None:
    runs = records.manifests(cfg)
    if not runs:
        return None
    lines = [
        f"# Status report: {cfg.release.product} {cfg.release.version} ({cfg.release.release_id})",
        "",
        "| Run | Finished | Verdict | Pass | Fail | Not verified | Pending |",
        "|-----|----------|---------|------|------|--------------|---------|",
    ]
    for m in runs:
        c = m["counts"]
        lines.append(
            f"| {m['run']['label']} | {m['run']['finished']} | {m['verdict']} | {c.get('pass', 0)} | "
            f"{c.get('fail', 0)} | {c.get('not verified', 0)} | {c.get('pending attestation', 0)} |"
        )
    open_items = {
        f"{i['section'].split(' / ')[-1]}: {i['item']} ({i['status']})"
        for m in runs
        for i in m["items"]
        if i["checks"] and i["status"] in ("fail", "not verified", "pending attestation")
    }
    lines += (
        ["", "## Open items", ""]
        + [f"- {item}" for item in sorted(open_items)]
        + (["- none"] if not open_items else [])
    )
    path = records.release_dir(cfg) / "status-report.md"
    write_atomic(path, "\n".join(lines) + "\n")
    return path
