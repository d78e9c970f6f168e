"""The incident record of a rollback: timeline, failed items, the triggers that fired."""

from __future__ import annotations

from pathlib import Path

from relcheck.core.files import write_json


def write(
    path: Path, release: str, deployed: dict | None, rolled_back: dict, post_deploy: dict | None, triggers: list[str]
) -> Path:
    timeline = []
    for record in filter(None, (deployed, rolled_back)):
        timeline.append([record["started"], f"{record['kind']} of {record['ref']} started"])
        for step in record["steps"]:
            timeline.append(
                [
                    record["started"],
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
            "triggers": triggers,
            "failed_items": failed or [["none", "", "rolled back without failed post-deploy items"]],
            "timeline": sorted(timeline),
            "rollback_steps": [
                [st["name"], "ok" if st["ok"] else "FAILED", st["detail"]] for st in rolled_back["steps"]
            ],
            "data_before_restore": rolled_back.get("safety_dump", {}),
            "discarded_by_restore": rolled_back.get("discarded", []),
        },
    )
    return path
