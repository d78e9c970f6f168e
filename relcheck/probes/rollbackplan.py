"""The judgement of *Prepare rollback plan* from what the fixtures gathered: the down-migration rehearsed on a
scratch copy (its error, the rows through it), the rollback steps that cannot run on this target, those the config
gives no means for, the proven backup, and what the release's upgrade costs the running service.

    plan = RollbackPlan(rehearsal, cannot_run, unconfigured, backup_proven, cost)
    assert not plan.problems; require(not plan.unconfigured, ...); assert not plan.data_problems

Which rollback works (plan.choice), from the previous release's code started on the rehearsal's scratch copy: its
critical paths after the downgrade (the full rollback) are the baseline; each one that passes there must pass on the
upgraded copy for the code-only rollback to be safe. Otherwise the downgrade is needed, or, when the downgrade
destroys data (a dropped table's rows, a dropped column's values other than its constant default), the restore.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relcheck.probes.migrations import MigrationCost

CODE_ONLY, DOWNGRADE, RESTORE = "code-only", "downgrade", "restore"
SAFE = "code-only rollback safe (previous release reads the new schema)"


@dataclass(frozen=True)
class Choice:
    """Which rollback works: kind CODE_ONLY, DOWNGRADE or RESTORE with its sentence; "" with the reason it is not
    verified (unverified) or that no rehearsed rollback works (problem)."""

    kind: str = ""
    sentence: str = ""
    unverified: str = ""
    problem: str = ""
    excluded: tuple[str, ...] = ()  # critical paths that fail on the previous release's own schema too

    @property
    def described(self) -> str:
        return self.sentence or self.problem or f"not verified: {self.unverified}"

    def as_record(self) -> dict:
        return {"kind": self.kind, "sentence": self.described}


def failure(run) -> str:
    """What the previous release's code failed on in a run (its start-up or the first critical path that failed)."""
    column = f" ({'; '.join(run.schema_errors[:2])})" if run.schema_errors else ""
    if run.health:
        return f"start-up: {run.health}{column}"
    bad = next(w for w in run.walked if not w.ok)
    got = f"got {bad.got}" + (f", missing {', '.join(bad.missing)}" if bad.missing else "")
    return f"{bad.name} ({bad.request}: expected {bad.expected}, {got}){column}"


def choose(previous: list, data_lost: list[tuple[str, str, int]], paths_configured: bool) -> Choice:
    """The choice from the previous release's runs on the copy (relcheck.ops.downgrade.PreviousRun by stage) and
    what the downgrade loses."""
    runs = {run.stage: run for run in previous}
    code, full = runs.get(CODE_ONLY), runs.get("full")
    if code is None or full is None:
        return Choice(unverified="the previous release's code did not run on the rehearsal's copy")
    if code.unverified or full.unverified:
        return Choice(unverified=code.unverified or full.unverified)
    if full.health:
        if code.health:  # on neither schema: how it is started is wrong, not the schema
            return Choice(
                unverified=f"the previous release's code did not answer healthy on the copy ({full.health}): "
                "check deploy.previous_start and deploy.previous_env"
            )
        return Choice(problem=f"the full rollback fails: the previous release on the downgraded copy: {failure(full)}")
    passed = [w.name for w in full.walked if w.ok]
    excluded = tuple(w.name for w in full.walked if not w.ok)
    if not passed:
        return Choice(
            unverified="no critical path passes on the previous release after the downgrade (post_deploy."
            "critical_paths" + (f": {failure(full)}" if paths_configured else " is empty") + "): nothing shows "
            "which rollback works",
            excluded=excluded,
        )
    walked = {w.name: w for w in code.walked}
    broken = code.health or any(name not in walked or not walked[name].ok for name in passed)
    if not broken:
        return Choice(CODE_ONLY, SAFE, excluded=excluded)
    fails = f"the previous release fails on {failure(code)}"
    if data_lost:
        lost = ", ".join(f"{name}: {n} {'rows' if what == 'table' else 'values'}" for what, name, n in data_lost)
        return Choice(
            RESTORE,
            f"needs the restore: the downgrade loses data written by this release ({lost}); code-only: {fails}",
            excluded=excluded,
        )
    return Choice(DOWNGRADE, f"needs the downgrade: {fails}", excluded=excluded)


def choice_record(choice: Choice, release, recorded: str) -> dict:
    """What *Prepare rollback plan* records for `relcheck rollback --code-only`: the choice, the release it was
    rehearsed for (release id, the previous ref started on the copy) and when (an ISO time with its zone)."""
    return {**choice.as_record(), "release_id": release.release_id, "previous_ref": release.previous_git_ref,
            "recorded": recorded}  # fmt: skip


def refuse_code_only(recorded: dict | None, where: str, release, pre_deploy_runs: list[dict]) -> str:
    """Why `relcheck rollback --code-only` must not run ("" when the recorded plan says it is safe, for this release
    and its previous ref, and was recorded by the release's last complete pre-deploy run: pre_deploy_runs, those
    runs' manifests newest first; a choice left by an older, narrowed or failed run is not the plan's word)."""
    rerun = "run pytest -m pre_deploy (Prepare rollback plan) again"
    if not recorded:
        return f"no rollback choice recorded at {where}: run pytest -m pre_deploy (Prepare rollback plan) first"
    for key, wanted in (("release_id", release.release_id), ("previous_ref", release.previous_git_ref)):
        if recorded.get(key) != wanted:
            got = recorded.get(key) or "?"
            return f"the rollback choice at {where} was recorded for {key} {got}, not {wanted}: {rerun}"
    if not pre_deploy_runs:
        return f"no complete pre-deploy run of {release.release_id} recorded the rollback choice at {where}: {rerun}"
    last = pre_deploy_runs[0]["run"]
    when = str(recorded.get("recorded") or "at an unknown time")
    try:
        at = datetime.fromisoformat(when)
        inside = datetime.fromisoformat(last["started"]) <= at <= datetime.fromisoformat(last["finished"])
    except (TypeError, ValueError):
        inside = False
    if not inside:
        return (
            f"the rollback choice at {where} (recorded {when}) is not from the release's last complete pre-deploy "
            f"run ({last['started']} to {last['finished']}): {rerun}"
        )
    if recorded.get("kind") != CODE_ONLY:
        return f"the rollback plan says the code-only rollback is not safe: {recorded.get('sentence', '?')}"
    return ""


@dataclass(frozen=True)
class RollbackPlan:
    rehearsal: object  # relcheck.ops.downgrade.DowngradeRehearsal: .error, .rows [(table, before, after | None)]
    cannot_run: list[str]  # rollback steps that cannot run here (no service manager, no previous ref, ...)
    unconfigured: list[str]  # rollback steps the config gives no means for: could not check them
    backup_proven: bool
    cost: MigrationCost | None  # None: the service has no migrations
    paths_configured: bool = True  # post_deploy.critical_paths is not empty

    @property
    def choice(self) -> Choice:
        if self.cost is None:
            return Choice(CODE_ONLY, "code-only rollback safe (the release has no migrations: deploy.migrate = [])")
        if getattr(self.rehearsal, "error", ""):
            return Choice(unverified="the down-migration rehearsal failed")
        return choose(
            getattr(self.rehearsal, "previous", []), getattr(self.rehearsal, "data_lost", []), self.paths_configured
        )

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
            + ([f"no rehearsed rollback works: {self.choice.problem}"] if self.choice.problem else [])
        )

    @property
    def data_problems(self) -> list[str]:
        """Nothing proven to roll back to, or rows the down-migration lost."""
        rows = getattr(self.rehearsal, "rows", [])
        lost = [
            f"{t} ({before} rows, {after} after)" for t, before, after in rows if after is not None and after != before
        ]
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
