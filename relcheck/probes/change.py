"""Judge a release by its change (SonarQube's new-code gate): a finding-producing probe also runs on the previous
release's tree, checked out into a throwaway git worktree, and each finding is introduced by this release,
pre-existing (in both) or fixed, matched by a stable identity (bandit: test, file and the code line's text, not its
number; an advisory: distribution and advisory id; a document problem: its file and text). Items stay absolute:
only the evidence and the pre-existing mark differ."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from relcheck.core.config import Release
from relcheck.core.errors import RelcheckError
from relcheck.core.statuses import NotVerified
from relcheck.target.git import GitRepo


class Identified(Protocol):
    @property
    def identity(self) -> Hashable: ...  # the same finding in another release has the same identity

    @property
    def label(self) -> str: ...  # how the evidence names it


@dataclass
class Change:
    """Findings against the previous release, or why they could not be compared (then: judged as today)."""

    introduced: list[str] = field(default_factory=list)
    pre_existing: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    missing: str = ""

    def __add__(self, other: Change) -> Change:
        missing = "; ".join(m for m in (self.missing, other.missing) if m)
        if missing:  # one part not compared: no claim about the whole
            return Change(missing=missing)
        return Change(
            self.introduced + other.introduced, self.pre_existing + other.pre_existing, self.fixed + other.fixed
        )


@dataclass
class Previous:
    """The previous release's tree, to run the same probes on, or why there is none."""

    release: str  # how the evidence names it: the previous version (else its ref)
    tree: Path | None = None
    missing: str = ""  # "no previous release to compare: release.previous_version unset"

    def findings(self, probe: Callable[[Path], list]) -> Before:
        """The probe's findings on the previous tree; a probe that could not run there (it raises NotVerified or a
        relcheck error) leaves them not compared."""
        if self.tree is None:
            return Before(self.release, None, self.missing)
        try:
            return Before(self.release, probe(self.tree))
        except (NotVerified, RelcheckError) as exc:
            return Before(self.release, None, f"not compared with {self.release}: {exc}")


@dataclass
class Before:
    """A probe's findings on the previous release (None: not compared, and why)."""

    release: str
    found: list | None
    missing: str = ""

    def compare(self, failing: Iterable[Identified], present: Iterable[Identified] | None = None) -> Change:
        """`failing`: the findings that fail the item now; `present`: every finding now (default: the failing
        ones), so that one accepted by a baseline is not called fixed. Matched as multisets: two equal findings
        now and one before is one pre-existing and one introduced."""
        if self.found is None:
            return Change(missing=self.missing)
        failing = list(failing)
        before = Counter(f.identity for f in self.found)
        change = Change()
        for finding in failing:
            if before[finding.identity] > 0:
                before[finding.identity] -= 1
                change.pre_existing.append(finding.label)
            else:
                change.introduced.append(finding.label)
        now = Counter(f.identity for f in (failing if present is None else present))
        for finding in self.found:
            if now[finding.identity] > 0:
                now[finding.identity] -= 1
            else:
                change.fixed.append(finding.label)
        return change


def record(evidence, title: str, release: str, change: Change) -> None:
    """The three groups as evidence (their pre-existing mark included), or why there are none."""
    if change.missing:
        evidence.kv(f"{title}: against the previous release", {"not compared": change.missing})
    else:
        evidence.change(title, release, change.introduced, change.pre_existing, change.fixed)


@contextmanager
def previous_release(release: Release, repo: Callable[[], GitRepo]) -> Iterator[Previous]:
    """The tree of release.previous_version's ref, checked out for the duration, or why there is none (repo opens
    the target's history, raising NotVerified when there is none)."""
    ref = release.previous_git_ref
    name = release.previous_version or ref
    with ExitStack() as stack:
        tree, missing = None, ""
        try:
            if not ref:
                missing = "release.previous_version unset"
            elif not (history := repo()).has_ref(ref):
                missing = f"ref {ref} not found"
            else:
                tree = stack.enter_context(history.worktree(ref))
        except NotVerified as exc:  # no history to check out from
            missing = str(exc)
        except RelcheckError as exc:
            missing = f"{ref} could not be checked out: {exc}"
        yield Previous(name, tree, f"no previous release to compare: {missing}" if missing else "")
