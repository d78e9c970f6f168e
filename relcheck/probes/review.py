"""What the git history between two releases says: was every change reviewed, did docs follow code."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from relcheck.probes.github import GitHub
from relcheck.target.git import Commit, GitRepo

_PULL_REQUEST = (re.compile(r"^Merge pull request #(\d+)"), re.compile(r"\(#(\d+)\)$"))  # merge / squash-merge


def pull_request(commit: Commit) -> str:
    """The pull request a change came through, as GitHub names its merge or squash-merge commits ("" if none)."""
    return next((m.group(1) for pattern in _PULL_REQUEST if (m := pattern.search(commit.subject))), "")


@dataclass
class ReviewedCommit:
    commit: Commit
    reviewed: bool
    how: str
    has_data: bool = True  # any review data at all (a trailer, even a self-review, or a pull request looked up)
    pull_request: str = ""  # the pull request it came through, whose reviews are not looked up without GitHub


def change_authors(repo: GitRepo, commit: Commit) -> set[str]:
    """Who wrote a change: a merge stands for the commits of its branch (the merger may be the reviewer)."""
    if len(commit.parents) > 1:
        merged = repo.commits(commit.parents[0], commit.parents[1], first_parent=False)
        return {c.author for c in merged} or {commit.author}
    return {commit.author}


def by_author(trailer: str, author: str) -> bool:
    """A trailer ("Reviewed-by: Name <mail>") naming the commit's own author: by e-mail, else by name."""
    value = trailer.split(":", 1)[-1].strip()
    mail, author_mail = re.search(r"<([^>]+)>", value), re.search(r"<([^>]+)>", author)
    if mail and author_mail:
        return mail.group(1).lower() == author_mail.group(1).lower()
    return value.split("<")[0].strip().lower() == author.split("<")[0].strip().lower()


def review_status(
    repo: GitRepo, since: str, until: str, trailers: list[str], github: GitHub | None = None
) -> list[ReviewedCommit]:
    """Each first-parent change since..until: a merge stands for its branch; reviewed by a trailer on the
    commit, or (with GitHub configured) an APPROVED review of the merged pull request."""
    results = []
    for commit in repo.commits(since, until):
        found = commit.trailers(trailers)
        authors = change_authors(repo, commit)
        independent = [t for t in found if not any(by_author(t, a) for a in authors)]
        if independent:
            results.append(ReviewedCommit(commit, True, independent[0]))
            continue
        pull = pull_request(commit)
        if github is not None and pull:
            reviews = github.get_all(f"pulls/{pull}/reviews")
            approvers = [r.get("user", {}).get("login", "?") for r in reviews if r.get("state") == "APPROVED"]
            if approvers:
                results.append(ReviewedCommit(commit, True, f"PR #{pull} approved by {', '.join(approvers)}"))
                continue
        if found:
            results.append(ReviewedCommit(commit, False, f"self-review only: {found[0]} is the author"))
            continue
        if pull and github is None:
            how = f"PR #{pull}: its reviews are not looked up (quality.review.github)"
            results.append(ReviewedCommit(commit, False, how, has_data=False, pull_request=pull))
            continue
        missing = "no review trailer" + (" or approved review" if github else "")
        results.append(ReviewedCommit(commit, False, missing, has_data=bool(github and pull)))
    return results


def matching(files: list[str], patterns: list[str]) -> list[str]:
    """Files under any of the paths or glob patterns."""

    def hit(name: str, pattern: str) -> bool:
        pattern = pattern.rstrip("/")
        return fnmatch.fnmatch(name, pattern) or name == pattern or name.startswith(pattern + "/")

    return [f for f in files if any(hit(f, p) for p in patterns)]
