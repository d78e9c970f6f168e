"""Only a complete phase run can be signed: a run narrowed (-k, --deselect, node ids, --lf), stopped early (-x,
--maxfail), interrupted, or with a check that could not be collected is PARTIAL, whatever its checks said.

    partial_reasons(Selection(narrowed_to=["checks/test_documentation.py"]), ...) -> ["narrowed to ..."]
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Selection:
    """How the session chose its checks, beyond the phase markers."""

    narrowed_to: list[str] = field(default_factory=list)  # paths or node ids other than the whole checklist
    keyword: str = ""  # -k
    deselected: list[str] = field(default_factory=list)  # --deselect
    last_failed: bool = False  # --lf / --ff
    collection_errors: list[str] = field(default_factory=list)


def partial_reasons(selection: Selection, interrupted: bool, expected: set[str], ran: set[str]) -> list[str]:
    """Why this run does not speak for its whole phases ([] for a complete run). expected: the checks of the selected
    phases as collected before any narrowing; ran: the checks that produced a result."""
    reasons = []
    if selection.narrowed_to:
        reasons.append(f"partial run: narrowed to {', '.join(selection.narrowed_to)}")
    if selection.keyword:
        reasons.append(f"partial run: narrowed by -k {selection.keyword!r}")
    if selection.deselected:
        reasons.append(f"partial run: --deselect {', '.join(selection.deselected)}")
    if selection.last_failed:
        reasons.append("partial run: --lf/--ff reorders or narrows the run")
    if selection.collection_errors:
        reasons.append(f"partial run: could not collect {', '.join(selection.collection_errors)}")
    if interrupted:
        reasons.append("partial run: interrupted")
    missing = expected - ran
    if missing:
        names = sorted(nodeid.split("::")[-1] for nodeid in missing)
        reasons.append(
            f"partial run: {len(missing)} of {len(expected)} checks of its phases did not run "
            f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
        )
    return reasons
