"""What a run writes and where: reports/<release id>/<run label>/ with report.html, manifest.json, evidence.json and
junit.xml. The HTML and JUnit files are written under partial names and moved into place when the run ends, so a
crash never leaves half a report where the last good one was."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from relcheck.core import config as config_module
from relcheck.core import records
from relcheck.core.checklist import Checklist
from relcheck.core.errors import RelcheckError
from relcheck.core.files import write_json
from relcheck.core.statuses import Verdict
from relcheck.probes import contacts
from relcheck.run import history
from relcheck.run import results as results_module
from relcheck.run.phases import PRE_RELEASE_PARTS, run_phases
from relcheck.run.report import render
from relcheck.run.results import CheckResult
from relcheck.target.git import GitRepo


@dataclass(frozen=True)
class OutputPaths:
    dir: Path
    html: Path
    junit: Path

    @property
    def html_partial(self) -> Path:
        return self.html.with_name(f".{self.html.name}.partial")

    @property
    def junit_partial(self) -> Path:
        return self.junit.with_name(f".{self.junit.name}.partial")

    def beside(self, suffix: str) -> "OutputPaths":
        """The same files in a sibling directory (a partial run's, next to its phase's report)."""
        directory = self.dir.with_name(self.dir.name + suffix)
        return OutputPaths(directory, directory / self.html.name, directory / self.junit.name)


def output_paths(
    cfg: config_module.Config, label: str, reports: str | None, htmlpath: str | None, xmlpath: str | None
) -> OutputPaths:
    """--relcheck-reports DIR, else --html's directory, else the release's run directory."""
    directory = Path(reports).resolve() if reports else records.run_dir(cfg, label)
    html = Path(htmlpath or directory / "report.html").resolve()
    directory = html.parent if htmlpath else directory
    return OutputPaths(directory, html, Path(xmlpath or directory / "junit.xml").resolve())


def tested_tree(cfg: config_module.Config) -> dict:
    """What was tested against what is released: target.source's files against the tree of the release ref."""
    ref = cfg.release.git_ref
    found: dict = {"ref": ref, "source": str(cfg.source)}
    try:
        repo = GitRepo(cfg.repository)
    except RelcheckError as exc:
        return {**found, "error": str(exc)}
    try:
        if not repo.has_ref(ref):
            return {**found, "error": f"{ref} is not in the service's history ({cfg.repository})"}
        compared = repo.compare_tree(ref, cfg.source)
        return {
            **found,
            "commit": repo.sha(ref),
            "ref_tree": compared.ref_tree,
            "tree": compared.tree,
            "same": compared.same,
            "summary": compared.describe(),
            "changes": [list(c) for c in compared.changes[:50]],
        }
    except RelcheckError as exc:
        return {**found, "error": str(exc)}
    finally:
        repo.close()


def tree_problem(tested: dict) -> str:
    """Why a pre-release verdict cannot stand on this tree ("" when the tested tree is the release's)."""
    if tested.get("error"):
        return f"tested tree not verified against {tested['ref']}: {tested['error']}"
    return "" if tested.get("same") else f"tested tree differs from {tested['ref']}: {tested.get('summary', '')}"


def header(
    cfg: config_module.Config,
    checklist: Checklist,
    label: str,
    markexpr: str,
    started: str,
    interrupted: bool,
    target_facts: dict,
    paths: OutputPaths,
    partial: list[str] | None = None,
) -> dict:
    """The manifest's header; partial: why the run is not a complete run of its phases ([] when it is)."""
    facts = dict(target_facts)
    tested = tested_tree(cfg)
    return {
        "product": cfg.release.product,
        "release_version": cfg.release.version,
        "release_id": cfg.release.release_id,
        "release_ref": cfg.release.git_ref,
        "release_sha": facts.pop("release_sha", "") or tested.get("commit", ""),
        "tested_tree": tested,
        "checklist": {"title": checklist.title, "version": checklist.version},
        "run": {
            "label": label,
            "markexpr": markexpr,
            "started": started,
            "finished": results_module.now(),
            "interrupted": interrupted,
            "partial": partial or [],
            "target": facts,
            "config_file": cfg.path.name,
            "config_sha256": hashlib.sha256(cfg.path.read_bytes()).hexdigest(),
            "relcheck_sha": results_module.git_sha(config_module.REPO) if config_module.IN_CHECKOUT else "",
            "tools": results_module.tool_versions(),
        },
        "contacts": [list(pair) for pair in contacts.of_release(cfg)],
        "files": {"html": paths.html.name, "evidence": "evidence.json", "junit": paths.junit.name},
    }


@dataclass
class Written:
    verdict: Verdict
    reasons: list[str]
    summary_html: str


def write(
    cfg: config_module.Config,
    checklist: Checklist,
    checks: dict[str, list[CheckResult]],
    covered: set[str],
    markexpr: str,
    run_header: dict,
    paths: OutputPaths,
) -> Written:
    """Results -> verdict (the trigger decision; PARTIAL for a run that is not complete) -> manifest and evidence on
    disk -> the HTML summary, rendered from the files as written, exactly as `relcheck verify` re-renders them."""
    results = results_module.item_results(checklist, checks, covered)
    pre_release = run_phases(markexpr) & {"pre_release", *PRE_RELEASE_PARTS}
    verdict, reasons, decision = results_module.final_verdict(
        results,
        run_phases(markexpr),
        run_header["run"]["interrupted"],
        tree_problem(run_header["tested_tree"]) if pre_release else "",  # what was tested must be what is released
        run_header["run"]["partial"],
    )
    manifest = results_module.manifest(run_header, results, verdict, reasons, decision)
    manifest["trend"] = history.trend(
        cfg.reports_dir,
        cfg.release.product,
        cfg.release.previous_version,
        cfg.release.version,
        run_header["run"]["label"],
        manifest["counts"],
    )
    if "monitoring" in run_phases(markexpr):  # watched over hours: each item's status over the runs
        manifest["timeline"] = history.timeline(paths.dir, manifest)
    evidence = {c.nodeid: c.evidence for found in checks.values() for c in found}
    history.archive_run(paths.dir)
    write_json(paths.dir / "evidence.json", evidence)
    manifest_sha = write_json(paths.dir / "manifest.json", manifest)
    manifest = json.loads((paths.dir / "manifest.json").read_text(encoding="utf-8"))
    evidence = json.loads((paths.dir / "evidence.json").read_text(encoding="utf-8"))
    return Written(verdict, reasons, render(manifest, results_module.from_manifest(manifest, evidence), manifest_sha))
