"""Where a release's runs and procedures leave their records — every path rule under reports/, here once:

reports/<release id>/<run label>/          a phase run (report.html, manifest.json, evidence.json, junit.xml)
reports/<release id>/deploy|rollback/      the procedures' records
reports/<release id>/own-requests/         relcheck's own requests that answered 5xx (the conformance run's)
reports/<release id>/conformance/          the pre-release conformance runs' findings, for the post-deploy subset
reports/history/<product>/<version>/       what a release measured, for the next release to be compared with
"""

from __future__ import annotations

import json
from pathlib import Path

from relcheck.core.config import Config

STATEMENT = "statement.dsse.json"  # a run's in-toto statement, beside its report


def release_dir(cfg: Config) -> Path:
    return cfg.reports_dir / cfg.release.release_id


def run_dir(cfg: Config, label: str) -> Path:
    """A phase run's directory."""
    return release_dir(cfg) / label


def history_dir(reports: Path, product: str, version: str) -> Path:
    """What a version measured (load samples, stress capacity), kept across releases."""
    return reports / "history" / product / version


def backups_dir(cfg: Config) -> Path:
    """Where backups are written (and measured for free disk): deploy.backup_dir, else the release's backups/."""
    return cfg.resolve(cfg.deploy.backup_dir) if cfg.deploy.backup_dir else release_dir(cfg) / "backups"


def deploy_record_path(cfg: Config) -> Path:
    return release_dir(cfg) / "deploy" / "record.json"


def rollback_record_path(cfg: Config) -> Path:
    return release_dir(cfg) / "rollback" / "record.json"


def incident_path(cfg: Config) -> Path:
    return release_dir(cfg) / "rollback" / "incident.json"


def monitoring_snapshot_path(cfg: Config) -> Path:
    return release_dir(cfg) / "pre-deploy" / "monitoring-snapshot.json"


def rollback_choice_path(cfg: Config) -> Path:
    """Which rollback the rehearsal on the scratch copy found to work (Prepare rollback plan writes it)."""
    return release_dir(cfg) / "pre-deploy" / "rollback-choice.json"


def own_requests_path(cfg: Config, by: str, started: float) -> Path:
    """Where a run records its own requests that answered 5xx (one file per run: `by` and its start)."""
    return release_dir(cfg) / "own-requests" / f"{by}-{started:.3f}.json"


def own_request_records(cfg: Config) -> list[Path]:
    """Every record of relcheck's own requests that answered 5xx: `relcheck init`'s (post_deploy.init_record) and
    the runs' of this release, the errors they made the service log being relcheck's, not the release's."""
    init = [cfg.resolve(cfg.post_deploy.init_record)] if cfg.post_deploy.init_record else []
    return init + sorted((release_dir(cfg) / "own-requests").glob("*.json"))


def conformance_record_path(cfg: Config, started: float) -> Path:
    """Where a pre-release conformance run records its findings (one file per run, named by its start)."""
    return release_dir(cfg) / "conformance" / f"pre-release-{started:.3f}.json"


def conformance_record(cfg: Config) -> tuple[dict | None, str]:
    """This release's newest pre-release conformance record and where it is (None: there is none)."""
    found = sorted((release_dir(cfg) / "conformance").glob("pre-release-*.json"))
    if not found:
        return None, f"none under {release_dir(cfg) / 'conformance'}: run the pre_release phase first"
    return read(found[-1]), str(found[-1])


def read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def previous_release_dir(cfg: Config) -> Path | None:
    """Where the previous release's runs were kept (its default release id), if it is known."""
    release = cfg.release
    return cfg.reports_dir / f"{release.product}-{release.previous_version}" if release.previous_version else None


def manifests(cfg: Config) -> list[dict]:
    """Every run manifest of this release, newest first."""
    return manifests_in(release_dir(cfg))


def manifests_in(directory: Path | None) -> list[dict]:
    """Every complete run's manifest of a release directory, newest first: a partial run (narrowed, stopped early,
    interrupted) never feeds a decision, a comparison or a status report."""
    found = [json.loads(p.read_text()) for p in directory.glob("*/manifest.json")] if directory else []
    complete = [m for m in found if not m["run"].get("partial")]
    return sorted(complete, key=lambda m: m["run"]["finished"], reverse=True)
