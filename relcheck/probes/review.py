"""What the git history between two releases says: was every change reviewed, did docs follow code."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from relcheck.probes.github import GitHub
from relcheck.target.git import Commit, GitRepo

_PR_MERGE = re.compile(r"^Merge pull request #(\d+)")


@dataclass
class ReviewedCommit:
    commit: Commit
    reviewed: bool
    how: str


def review_status(
    repo: GitRepo, since: str, until: str, trailers: list[str], github: GitHub | None = None
) -> list[ReviewedCommit]:
    """Each first-parent change since..until: a merge stands for its branch; reviewed by a trailer on the
    commit, or (with GitHub configured) an APPROVED review of the merged pull request."""
    results = []
    for commit in repo.commits(since, until):
        found = commit.trailers(trailers)
        if found:
            results.append(ReviewedCommit(commit, True, found[0]))
            continue
        pull = _PR_MERGE.match(commit.subject)
        if github is not None and pull:
            reviews = github.get_all(f"pulls/{pull.group(1)}/reviews")
            approvers = [r.get("user", {}).get("login", "?") for r in reviews if r.get("state") == "APPROVED"]
            if approvers:
                results.append(ReviewedCommit(commit, True, f"PR #{pull.group(1)} approved by {', '.join(approvers)}"))
                continue
        results.append(ReviewedCommit(commit, False, "no review trailer" + (" or approved review" if github else "")))
    return results


def matching(files: list[str], patterns: list[str]) -> list[str]:
    """Files under any of the paths or glob patterns."""

    def hit(name: str, pattern: str) -> bool:
        pattern = pattern.rstrip("/")
        return fnmatch.fnmatch(name, pattern) or name == pattern or name.startswith(pattern + "/")

    return [f for f in files if any(hit(f, p) for p in patterns)]
