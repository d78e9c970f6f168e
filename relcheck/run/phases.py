"""The phase vocabulary: the markers, which phases a `-m` expression selects, and when each phase's checks are due
in a release's life (a rollback trigger only waits for checks already due)."""

from __future__ import annotations

import re

from _pytest.mark.expression import Expression

PRE_RELEASE_PARTS = ("code_quality", "performance", "security", "documentation")
PHASES = (
    ("pre_release",)
    + PRE_RELEASE_PARTS
    + ("pre_deploy", "deploy", "post_deploy", "rollback", "post_rollback", "monitoring", "signoff", "post_release")
)
LIFECYCLE = ("pre_release", "pre_deploy", "post_deploy", "post_rollback", "monitoring", "post_release")


def run_label(markexpr: str) -> str:
    """The run's name in reports/<release id>/: "pre_release", "post_deploy", "all" ..."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", markexpr.strip()).strip("-") or "all"


def run_phases(markexpr: str) -> set[str]:
    """The phases a -m expression selects (a sub-phase also carries pre_release)."""
    if not markexpr:
        return set(PHASES)
    expression = Expression.compile(markexpr)
    selected = set()
    for phase in PHASES:
        if expression.evaluate(carries({phase, "pre_release"} if phase in PRE_RELEASE_PARTS else {phase})):
            selected.add(phase)
    return selected


def selects(markexpr: str, markers: set[str]) -> bool:
    """Whether a check carrying these markers is selected by a -m expression ("" selects every check)."""
    return not markexpr or Expression.compile(markexpr).evaluate(carries(markers))


def carries(markers: set[str]):
    """A -m matcher for a check that carries exactly these markers."""

    def matches(name: str, /, **kwargs: str | int | bool | None) -> bool:
        return name in markers

    return matches


def is_due(check_phases: set[str], selected: set[str]) -> bool:
    """Whether a check's phase comes no later in the release than the run's: a post-deploy decision does not wait
    for monitoring checks, a monitoring decision counts everything before it."""
    now = max((LIFECYCLE.index(p) for p in selected if p in LIFECYCLE), default=0)
    return min((LIFECYCLE.index(p) for p in check_phases if p in LIFECYCLE), default=0) <= now


def observes(mapped: list[str], phases_of: dict[str, set[str]], selected: set[str]) -> bool:
    """A run decides a trigger when one of its mapped checks belongs to the run's phases (a monitoring run does not
    re-decide on the pre-release scans); a trigger without checks, or naming an unknown check, is always decided
    (its check reports the problem)."""
    return not mapped or any(c not in phases_of or phases_of[c] & selected for c in mapped)
