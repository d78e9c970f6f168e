"""One check proving the same kind of item in several phases: a parametrized case per (phase, section, item),
each with its own phase marker and checklist item."""

from __future__ import annotations

import pytest


def for_items(*cases: tuple[str, str, str]):
    """@for_items(("post_deploy", "Post-Deployment", "Run health checks"), ("post_rollback", ...)) gives the
    check a `phase` argument and one case per phase."""
    phases = [phase for phase, _, _ in cases]
    return pytest.mark.parametrize(
        "phase",
        [
            pytest.param(
                phase,
                marks=[getattr(pytest.mark, phase), pytest.mark.item(section, item)],
                id=phase if phases.count(phase) == 1 else f"{phase}: {item}",
            )
            for phase, section, item in cases
        ],
    )


def after_deploy_and_rollback(item: str):
    """The same check for Post-Deployment and Post-Rollback, as two parametrized cases."""
    return for_items(("post_deploy", "Post-Deployment", item), ("post_rollback", "Post-Rollback", item))
