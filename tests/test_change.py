"""Judging a release by its change: findings matched by identity against the previous release's tree, checked
out into a throwaway git worktree of a tiny repository built here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from gitrepo import Repo

from relcheck.core.config import Release
from relcheck.core.statuses import NotVerified
from relcheck.probes import change
from relcheck.target.git import GitRepo

SHELL = "import subprocess\n\n\ndef {name}(command):\n    return subprocess.call(command, shell=True)\n"


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
