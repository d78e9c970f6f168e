"""The judgement of *Prepare rollback plan* from what the fixtures gathered: the down-migration rehearsed on a
scratch copy (its error, the rows through it), the rollback steps that cannot run on this target, those the config
gives no means for, the proven backup, and what the release's upgrade costs the running service.

    plan = RollbackPlan(rehearsal, cannot_run, unconfigured, backup_proven, cost)
    assert not plan.problems; require(not plan.unconfigured, ...); assert not plan.data_problems
"""

from __future__ import annotations

from dataclasses import dataclass

from relcheck.probes.migrations import MigrationCost


@dataclass(frozen=True)
class RollbackPlan:
    rehearsal: object  # relcheck.ops.downgrade.DowngradeRehearsal: .error, .rows [(table, before, after | None)]
    cannot_run: list[str]  # rollback steps that cannot run here (no service manager, no previous ref, ...)
    unconfigured: list[str]  # rollback steps the config gives no means for: could not check them
    backup_proven: bool
    cost: MigrationCost | None  # None: the service has no migrations

    @property
    def problems(self) -> list[str]:
        """What is definitely wrong with the plan: the rehearsal failed, a step cannot run, the migration blocks."""
        error = getattr(self.rehearsal, "error", "")
        definite = [p for p in self.cannot_run if p not in self.unconfigured]
        cost = self.cost
        return (
            ([f"down-migration rehearsal failed: {error}"] if error else [])
            + ([f"the rollback cannot run: {'; '.join(definite)}"] if definite else [])
            + ([f"the migration blocks the running service: {cost.problem}"] if cost and cost.problem else [])
        )

    @property
    def data_problems(self) -> list[str]:
        """Nothing proven to roll back to, or rows the down-migration lost."""
        lost = [t for t, before, after in getattr(self.rehearsal, "rows", []) if after is not None and after != before]
        return (["no proven backup to roll back to"] if not self.backup_proven else []) + (
            [f"rows lost by the down-migration in: {', '.join(lost)}"] if lost else []
        )

    @property
    def cost_unverified(self) -> str:
        return (
            f"what the migration costs is not verified: {self.cost.unverified}"
            if self.cost and self.cost.unverified
            else ""
        )
