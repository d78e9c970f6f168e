"""Judging a release by its change: the finding-producing checks also run on the previous release's tree (a
throwaway git worktree of a tiny repository built here), and each finding is introduced, pre-existing or fixed.
The items stay absolute; a failure with nothing introduced is marked pre-existing. Tools that did not run, and an
advisory mirror that is stale or missing, leave the scan not verified, never failed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from gitrepo import Repo

from conftest import H11_ADVISORY, REPO, transitive_advisory
from relcheck.core.config import Release
from relcheck.core.statuses import NotVerified
from relcheck.probes import change
from relcheck.run.runner import merge
from relcheck.target.git import GitRepo

SHELL = "import subprocess\n\n\ndef {name}(command):\n    return subprocess.call(command, shell=True)\n"
CHECKS = "security_scan or vulnerabilities or technical_documentation"
PRE_EXISTING = "present in 1.0.0: rolling back would not fix it"


def two_releases(path: Path) -> Repo:
    """v1.0.0 and v1.1.0 of a small service: a shell=True call (bandit B602, HIGH) in both releases, on another
    line in v1.1.0; one more only in v1.0.0; the same vulnerable pin and README placeholder in both."""
    repo = Repo(path)
    repo.commit(
        "Release 1.0.0",
        {
            "app/run.py": SHELL.format(name="run"),
            "app/old.py": SHELL.format(name="old"),
            "requirements.txt": "starlette==0.26.1\n",
            "README.md": "# App\nTODO: describe the app\n",
        },
    )
    repo.tag("v1.0.0")
    repo.git("rm", "-q", "app/old.py")
    repo.commit(
        "Release 1.1.0",
        {
            "app/run.py": "TIMEOUT = 5\n\n" + SHELL.format(name="run"),
            "README.md": "# App\n\nA service.\nTODO: describe the app\n",
        },
    )
    repo.tag("v1.1.0")
    return repo


def config_for(bench, repo: Repo, changes: dict | None = None, **release) -> Path:
    base = {
        "release": {"version": "1.1.0", "previous_version": "1.0.0", **release},
        "target": {"source": str(repo.path), "repository": str(repo.path)},
        "security": {"bandit": {"targets": ["app"], "baseline": ""}, "waivers": ""},
        "docs": {"required": ["README.md"]},
    }
    return bench.config(merge(base, changes or {}))


def against(checked, test: str, title: str) -> list[list[str]]:
    (block,) = [b for b in checked.evidence(test) if b["title"] == f"{title}: against 1.0.0"]
    return block["rows"]


def pre_existing(checked, test: str) -> str:
    (check,) = [c for i in checked.manifest["items"] for c in i["checks"] if c["test"].endswith(f"::{test}")]
    return check["pre_existing"]


def test_findings_in_both_releases_fail_as_pre_existing_and_a_new_one_is_introduced(bench, tmp_path):
    repo = two_releases(tmp_path / "service")
    config = config_for(bench, repo)
    checked = bench.run(config, "-k", CHECKS)
    for test in (
        "test_security_scan",
        "test_security_scan_and_dependency_audit",
        "test_vulnerabilities_addressed",
        "test_technical_documentation",
    ):
        assert checked.status(test) == "fail", (test, checked.reason(test))
        assert pre_existing(checked, test) == PRE_EXISTING, test
    assert against(checked, "test_security_scan", "Findings at or above the threshold") == [
        ["pre-existing (also in 1.0.0)", "B602 app/run.py:7 return subprocess.call(command, shell=True)"],
        ["fixed", "B602 app/old.py:5 return subprocess.call(command, shell=True)"],
    ]
    assert ["pre-existing (also in 1.0.0)", "starlette==0.26.1 PYSEC-2023-83"] in against(
        checked, "test_security_scan_and_dependency_audit", "Code and dependency findings"
    )
    assert against(checked, "test_technical_documentation", "Problems") == [
        ["pre-existing (also in 1.0.0)", "README.md: line 4: placeholder TODO: TODO: describe the app"]
    ]
    assert repo.git("worktree", "list").count("\n") == 1  # the previous tree's worktree is gone

    (repo.path / "app" / "new.py").write_text(SHELL.format(name="new"))  # this release's own finding
    checked = bench.run(config, "-k", "test_security_scan and not dependency")
    assert checked.status("test_security_scan") == "fail"
    assert ["introduced", "B602 app/new.py:5 return subprocess.call(command, shell=True)"] in against(
        checked, "test_security_scan", "Findings at or above the threshold"
    )
    assert pre_existing(checked, "test_security_scan") == ""


def test_a_transitive_finding_in_both_releases_is_pre_existing(bench, tmp_path):
    """Both releases pin uvicorn, which pulls in h11, pinned nowhere: the previous release's resolution is audited
    too (the same requirements: pip runs once), so its vulnerable h11 is not called introduced."""
    repo = Repo(tmp_path / "service")
    for version in ("1.0.0", "1.1.0"):
        repo.commit(
            f"Release {version}", {"app/version.py": f"V = {version!r}\n", "requirements.txt": "uvicorn==0.54.0\n"}
        )
        repo.tag(f"v{version}")
    mirror = {"security": {"dependencies": {"advisories": [str(transitive_advisory(tmp_path))]}}}
    checked = bench.run(config_for(bench, repo, mirror), "-k", "dependency_audit")
    test = "test_security_scan_and_dependency_audit"
    assert checked.status(test) == "fail", checked.reason(test)
    (row,) = against(checked, test, "Code and dependency findings")
    assert row[0] == "pre-existing (also in 1.0.0)"
    assert re.fullmatch(rf"h11==\S+ {H11_ADVISORY} \(transitive\)", row[1]), row
    assert pre_existing(checked, test) == PRE_EXISTING


@pytest.mark.parametrize(
    "release, why",
    [
        ({"previous_version": ""}, "no previous release to compare: release.previous_version unset"),
        ({"previous_version": "0.9.0"}, "no previous release to compare: ref v0.9.0 not found"),
    ],
)
def test_without_a_previous_release_the_scan_is_judged_as_before_and_says_so(bench, tmp_path, release, why):
    checked = bench.run(config_for(bench, two_releases(tmp_path / "service"), **release), "-k", "test_security_scan")
    assert checked.status("test_security_scan") == "fail"
    assert checked.reason("test_security_scan").startswith("1 new finding(s) at or above medium: B602 app/run.py:7")
    facts = checked.facts("test_security_scan", "Findings at or above the threshold: against the previous release")
    assert facts == {"not compared": why}
    assert pre_existing(checked, "test_security_scan") == ""


def test_bandit_that_cannot_run_leaves_the_scans_not_verified(bench, tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
    config = bench.config({"security": {"bandit": {"python": str(tmp_path / "bare" / "bin" / "python")}}})
    checked = bench.run(config, "-k", "security_scan or vulnerabilities")
    for test in ("test_security_scan", "test_security_scan_and_dependency_audit", "test_vulnerabilities_addressed"):
        assert checked.status(test) == "not verified", (test, checked.reason(test))
        assert "No module named bandit" in checked.reason(test) and "security.bandit.python" in checked.reason(test)


def test_a_stale_or_missing_advisory_mirror_leaves_the_audit_not_verified_naming_the_fix(bench, tmp_path):
    stale = shutil.copytree(REPO / "examples" / "advisories", tmp_path / "stale")
    taken = datetime.now(timezone.utc) - timedelta(days=30)
    (stale / "snapshot.json").write_text(json.dumps({"taken": taken.isoformat()}))
    for mirror, fix in [(stale, "security.dependencies.max_age_days"), (tmp_path / "absent", "not found")]:
        config = bench.config({"security": {"dependencies": {"advisories": [str(mirror)], "pip_audit": "off"}}})
        checked = bench.run(config, "-k", "dependency_audit")
        reason = checked.reason("test_security_scan_and_dependency_audit")
        assert checked.status("test_security_scan_and_dependency_audit") == "not verified", reason
        assert fix in reason and "security.dependencies" in reason


# --- the parts, directly ---------------------------------------------------------------------------------------
@dataclass
class Found:
    identity: tuple
    label: str


def test_findings_are_matched_by_identity_as_multisets():
    before = change.Before("1.0.0", [Found(("B602", "a.py"), "a.py:3"), Found(("B101", "b.py"), "b.py:1")])
    now = [Found(("B602", "a.py"), "a.py:9"), Found(("B602", "a.py"), "a.py:12")]
    assert before.compare(now) == change.Change(["a.py:12"], ["a.py:9"], ["b.py:1"])
    accepted = [Found(("B101", "b.py"), "b.py:4")]  # present now but accepted (a baseline): not fixed
    assert before.compare(now, now + accepted).fixed == []
    missing = change.Before("1.0.0", None, "bandit did not run there")
    assert (missing.compare(now) + before.compare(now)).missing == "bandit did not run there"


def test_the_previous_tree_is_a_worktree_removed_afterwards_also_on_error(tmp_path):
    repo = two_releases(tmp_path / "service")
    history = GitRepo(repo.path)
    release = Release(product="app", version="1.1.0", previous_version="1.0.0")
    with pytest.raises(RuntimeError), change.previous_release(release, lambda: history) as previous:
        assert (previous.tree / "app" / "old.py").is_file() and not previous.missing
        tree = previous.tree
        raise RuntimeError("a probe broke")
    assert not tree.exists() and repo.git("worktree", "list").count("\n") == 1

    def no_history() -> GitRepo:
        raise NotVerified("no such repository (target.repository)")

    with change.previous_release(release, no_history) as previous:
        assert previous.tree is None
        assert previous.missing == "no previous release to compare: no such repository (target.repository)"
        assert previous.findings(lambda tree: []).missing == previous.missing


def test_a_trigger_fed_only_by_pre_existing_failures_blocks_instead_of_rolling_back(bench, tmp_path):
    """The complete security run of 1.1.0 fails its scans on findings 1.0.0 has too; the post-deploy smoke after it
    fires Security vulnerabilities from them, and decides BLOCKED ("rolling back would not fix it"), not ROLLBACK."""
    config = config_for(bench, two_releases(tmp_path / "service"))
    scanned = bench.run(config, "-m", "security")
    assert scanned.status("test_security_scan_and_dependency_audit") == "fail"
    assert pre_existing(scanned, "test_security_scan_and_dependency_audit") == PRE_EXISTING
    checked = bench.run(config, "-m", "post_deploy")
    decision = checked.manifest["decision"]
    (fired,) = [f for f in decision["fired"] if f["trigger"] == "Security vulnerabilities"]
    assert fired["pre_existing"], fired
    assert checked.verdict != "ROLLBACK" and checked.returncode != 3
    assert any(
        r.startswith("pre-existing failure, rolling back would not fix it: Security")
        for r in checked.manifest["verdict_reasons"]
    )
