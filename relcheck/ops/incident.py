"""The incident record of a rollback: the triggers that fired with the checks and reasons behind them, the failed
post-deploy items, the rollback steps with their exit statuses, the data-integrity result and a timeline. The root
cause is a person's: attested for the "Document issues" item."""

from __future__ import annotations

from pathlib import Path

from relcheck.core import records
from relcheck.core.config import Config
from relcheck.core.files import write_json


def write_for(cfg: Config, deployed: dict | None, rolled_back: dict, without_trigger: str) -> Path:
    """The incident of this release's rollback, from its newest post-deploy run (its fired triggers); a rollback
    no trigger asked for is recorded as without_trigger."""
    post = next((m for m in records.manifests(cfg) if "post_deploy" in m["run"]["label"]), None)
    fired = ((post or {}).get("decision") or {}).get("fired") or [
        {"trigger": without_trigger, "checks": [], "reason": "no rollback trigger fired"}
    ]
    return write(records.incident_path(cfg), cfg.release.release_id, deployed, rolled_back, post, fired)


def write(
    path: Path, release: str, deployed: dict | None, rolled_back: dict, post_deploy: dict | None, fired: list[dict]
) -> Path:
    timeline = []
    for record in filter(None, (deployed, rolled_back)):
        timeline.append([record["started"], f"{record['kind']} of {record['ref']} started"])
        for step in record["steps"]:
            timeline.append(
                [
                    step.get("finished") or record["started"],
                    f"{record['kind']}: {step['name']} {'done' if step['ok'] else 'FAILED'} in {step['seconds']:.1f} s",
                ]
            )
        timeline.append([record["finished"], f"{record['kind']} {'completed' if record['ok'] else 'stopped'}"])
    failed = [
        [
            f"{i['section'].split(' / ')[-1]}: {i['item']}",
            i["status"],
            next((c["reason"] for c in i["checks"] if c["reason"]), ""),
        ]
        for i in (post_deploy or {}).get("items", [])
        if i["checks"] and i["status"] not in ("pass", "warn", "waived")
    ]
    if post_deploy:
        timeline.append([post_deploy["run"]["finished"], f"post-deploy decision: {post_deploy['verdict']}"])
    write_json(
        path,
        {
            "release": release,
            "opened": rolled_back["finished"],
            "triggers": fired,
            "failed_items": failed or [["none", "", "rolled back without failed post-deploy items"]],
            "timeline": sorted(timeline),
            "rollback_ok": rolled_back["ok"],
            "rollback_steps": [
                {
                    "step": st["name"],
                    "ok": st["ok"],
                    "exit statuses": [c["exit"] for c in st.get("commands", [])],
                    "detail": st["detail"],
                }
                for st in rolled_back["steps"]
            ],
            "data_integrity": rolled_back.get("data_integrity", {}),
            "data_before_restore": rolled_back.get("safety_dump", {}),
            "discarded_by_restore": rolled_back.get("discarded", []),
        },
    )
    return path
