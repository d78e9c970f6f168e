"""Which rollback is safe: the previous release's code started on the rehearsal's scratch copy, after the upgrade
(code-only rollback) and after the downgrade (full rollback), judged against the data the downgrade destroys; the
reference service with migrations added for the purpose, the live database untouched."""

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from conftest import relcheck_cli
from relcheck.core import records
from relcheck.core.config import ConfigError, load
from relcheck.ops.downgrade import PreviousRun, healthy_or_why, not_the_previous, run_previous
from relcheck.probes import migrations
from relcheck.probes.rollbackplan import CODE_ONLY, DOWNGRADE, RESTORE, SAFE, choose, refuse_code_only
from relcheck.target import dbstate, service
from relcheck.target.http import Answer
from relcheck.target.request_specs import Walked

PATHS = [("calculate a chart", "POST /v1/kundli", 201), ("read it back", "GET /v1/kundli/7", 200)]


def walked(*got) -> list[Walked]:
    paths = zip(PATHS, got, strict=False)
    return [Walked(name, request, "operator", expect, status) for (name, request, expect), status in paths]


def runs(code: PreviousRun, full: PreviousRun | None = None) -> list[PreviousRun]:
    return [code, full or PreviousRun("full", True, walked=walked(201, 200))]


def test_the_previous_release_passing_its_paths_on_the_new_schema_is_a_safe_code_only_rollback():
    choice = choose(runs(PreviousRun("code-only", True, walked=walked(201, 200))), [("table", "t", 3)], True)
    assert (choice.kind, choice.sentence) == (CODE_ONLY, SAFE)


def test_a_path_failing_only_on_the_new_schema_needs_the_downgrade_or_with_data_lost_the_restore():
    code = PreviousRun("code-only", True, walked=walked(500), schema_errors=['column "name" does not exist'])
    choice = choose(runs(code), [], True)
    assert choice.kind == DOWNGRADE
    assert choice.sentence == (
        "needs the downgrade: the previous release fails on calculate a chart (POST /v1/kundli: expected 201, "
        'got 500) (column "name" does not exist)'
    )
    choice = choose(runs(code), [("column", "charts.notes", 20)], True)
    assert choice.kind == RESTORE
    assert choice.sentence.startswith(
        "needs the restore: the downgrade loses data written by this release (charts.notes: 20 values); code-only: "
    )
    not_healthy = PreviousRun("code-only", True, health="service exited during start-up")
    assert choose(runs(not_healthy), [], True).sentence.startswith("needs the downgrade: the previous release fails")


def test_a_path_the_previous_release_fails_on_its_own_schema_is_not_held_against_the_new_one():
    full = PreviousRun("full", True, walked=walked(201, 404))
    choice = choose(runs(PreviousRun("code-only", True, walked=walked(201, 404)), full), [], True)
    assert (choice.kind, choice.excluded) == (CODE_ONLY, ("read it back",))


def test_a_previous_release_that_cannot_be_started_or_compared_is_not_verified_never_safe():
    no_command = PreviousRun("code-only", unverified="deploy.previous_start is not configured: how to start ...")
    choice = choose(runs(no_command, PreviousRun("full", unverified=no_command.unverified)), [], True)
    assert (choice.kind, choice.unverified) == ("", no_command.unverified)
    down = PreviousRun("code-only", True, health="not healthy within 30s")
    choice = choose(runs(down, PreviousRun("full", True, health="not healthy within 30s")), [], True)
    assert choice.kind == "" and "check deploy.previous_start and deploy.previous_env" in choice.unverified
    nothing = PreviousRun("full", True, walked=walked(404))
    choice = choose(runs(PreviousRun("code-only", True, walked=walked(404)), nothing), [], True)
    assert choice.kind == "" and choice.unverified.startswith("no critical path passes on the previous release")
    assert "is empty" in choose(runs(PreviousRun("code-only", True), PreviousRun("full", True)), [], False).unverified
    full_down = PreviousRun("full", True, health="not healthy within 30s")
    broken_full = choose(runs(PreviousRun("code-only", True, walked=walked(201, 200)), full_down), [], True)
    assert broken_full.kind == "" and broken_full.problem.startswith("the full rollback fails")


RELEASE = SimpleNamespace(release_id="p-1.1.0", previous_git_ref="v1.0.0")
LAST_RUN = {"run": {"started": "2026-12-04T10:00:00+00:00", "finished": "2026-12-04T10:20:00+00:00"}}


def recorded(kind: str, sentence: str, when: str = "2026-12-04T10:12:00+00:00", **release) -> dict:
    return {"kind": kind, "sentence": sentence, "release_id": "p-1.1.0", "previous_ref": "v1.0.0", "recorded": when,
            **release}  # fmt: skip


def test_relcheck_rollback_code_only_is_refused_unless_the_plan_found_it_safe():
    assert refuse_code_only(recorded(CODE_ONLY, SAFE), "x.json", RELEASE, [LAST_RUN]) == ""
    refused = refuse_code_only(None, "x.json", RELEASE, [LAST_RUN])
    assert refused.startswith("no rollback choice recorded at x.json: run pytest -m pre_deploy")
    assert refuse_code_only(recorded(DOWNGRADE, "needs the downgrade: ..."), "x.json", RELEASE, [LAST_RUN]) == (
        "the rollback plan says the code-only rollback is not safe: needs the downgrade: ..."
    )


def test_relcheck_rollback_code_only_refuses_a_choice_of_another_release_or_not_of_its_last_pre_deploy_run():
    again = ": run pytest -m pre_deploy (Prepare rollback plan) again"
    other = refuse_code_only(recorded(CODE_ONLY, SAFE, release_id="p-1.0.0"), "x.json", RELEASE, [LAST_RUN])
    assert other == "the rollback choice at x.json was recorded for release_id p-1.0.0, not p-1.1.0" + again
    ref = refuse_code_only(recorded(CODE_ONLY, SAFE, previous_ref="v0.9.0"), "x.json", RELEASE, [LAST_RUN])
    assert ref.startswith("the rollback choice at x.json was recorded for previous_ref v0.9.0, not v1.0.0")
    # a pre-deploy run after the one that recorded it (its rollback plan failed before recording, or was deselected)
    older = refuse_code_only(recorded(CODE_ONLY, SAFE, "2026-12-04T09:59:59+00:00"), "x.json", RELEASE, [LAST_RUN])
    assert older == (
        "the rollback choice at x.json (recorded 2026-12-04T09:59:59+00:00) is not from the release's last complete "
        "pre-deploy run (2026-12-04T10:00:00+00:00 to 2026-12-04T10:20:00+00:00)" + again
    )
    undated = {k: v for k, v in recorded(CODE_ONLY, SAFE).items() if k != "recorded"}  # recorded before this rule
    assert "(recorded at an unknown time) is not from" in refuse_code_only(undated, "x.json", RELEASE, [LAST_RUN])
    none = refuse_code_only(recorded(CODE_ONLY, SAFE), "x.json", RELEASE, [])  # only a narrowed run recorded it
    assert none == "no complete pre-deploy run of p-1.1.0 recorded the rollback choice at x.json" + again


class Clock:
    """time for relcheck.target.service's waits: a sleep advances it, so a wait of many seconds takes none."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def slow_to_heal(clock: Clock, healthy_at: float | None):
    """A started previous release: answers 503 (its text says why) until healthy_at seconds, then 200."""
    running = SimpleNamespace(running=True, detail="running")

    def health() -> Answer:
        ok = healthy_at is not None and clock.now >= healthy_at
        return Answer("GET", "http://127.0.0.1:1/health", 200 if ok else 503, text="" if ok else '{"db":"warm"}')

    process = SimpleNamespace(status=lambda: running, last_output=lambda: "")
    return SimpleNamespace(service=process, health=health, http=SimpleNamespace(base_url="http://127.0.0.1:1"),
                           routes=SimpleNamespace(health="/health"))  # fmt: skip


def test_a_previous_release_slower_to_become_healthy_is_waited_for_up_to_previous_startup_s(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(service, "time", clock)
    cfg = SimpleNamespace(deploy=SimpleNamespace(previous_startup_s=30))
    assert healthy_or_why(cfg, slow_to_heal(clock, healthy_at=12)) == ""  # past the former fixed 5 s grace
    assert 12 <= clock.now < 13  # waited on the condition, not for the whole limit
    clock.now = 0.0
    why = healthy_or_why(cfg, slow_to_heal(clock, healthy_at=None))  # a 503 it keeps: its answer, with its text
    assert why.startswith("service not healthy within 30s (") and why.endswith('HTTP 503): {"db":"warm"}'), why
    assert 30 <= clock.now < 31


def reporting(version: str | None):
    """Started code whose version route answers {"version": version} (404 when None)."""
    answer = Answer("GET", "http://127.0.0.1:1/version", 404 if version is None else 200,
                    text=json.dumps({"version": version}))  # fmt: skip
    cfg = SimpleNamespace(target=SimpleNamespace(version=SimpleNamespace(openapi=False, header="", pointer="/version")))
    running = SimpleNamespace(running=True, detail="running")
    return SimpleNamespace(service=SimpleNamespace(status=lambda: running), routes=SimpleNamespace(version="/version"),
                           config=cfg, version=lambda: answer)  # fmt: skip


def test_code_that_is_not_the_previous_release_proves_no_rollback_choice():
    """A previous_start that runs the release's own installed code (Kinto from its one virtualenv, whatever tree it
    starts in) would show the release reading its own schema: "code-only safe" on no evidence. Not verified."""
    cfg = SimpleNamespace(release=SimpleNamespace(previous_version="26.4.0"))
    assert not_the_previous(cfg, reporting("26.4.0"), healthy=True) == ""
    assert not_the_previous(cfg, reporting("26.5.0"), healthy=True) == (
        "the code deploy.previous_start started reports version 26.5.0 (/version in /version's answer), not "
        "release.previous_version 26.4.0: it is not the previous release's code"
    )
    unread = not_the_previous(cfg, reporting(None), healthy=True)
    assert unread.startswith("could not tell that deploy.previous_start started the previous release (its version")
    assert not_the_previous(cfg, reporting(None), healthy=False) == ""  # its health answers for it
    code = PreviousRun("code-only", True, walked=walked(201, 200), unverified=unread)
    choice = choose(runs(code), [], True)
    assert (choice.kind, choice.unverified) == ("", unread)


def test_an_infinite_blocking_limit_or_start_up_time_is_a_config_error(tmp_path):
    path = tmp_path / "relcheck.toml"
    base = '[release]\nproduct = "p"\nversion = "1"\n[target]\nmode = "remote"\nbase_url = "http://x"\nsource = "."\n'
    path.write_text(base + "[deploy]\nmax_blocking_s = inf\n")
    with pytest.raises(ConfigError, match="deploy.max_blocking_s: Input should be a finite number"):
        load(path)
    path.write_text(base + "[deploy]\nprevious_startup_s = nan\n")
    with pytest.raises(ConfigError, match="deploy.previous_startup_s"):
        load(path)


def test_a_constant_default_is_not_data_the_downgrade_loses(runtime):
    dsn = runtime.pg.create_database("rollback_choice", runtime.recipe.user, runtime.password)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int, kind text NOT NULL DEFAULT 'a'::text, at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO t (id) SELECT g FROM generate_series(1, 5) g")
        conn.execute("UPDATE t SET kind = 'b' WHERE id <= 2")
        defaults = dbstate.constant_default_counts(conn)
    assert defaults == {"public.t": {"kind": 3}}  # now() is volatile: its values are data
    destroyed = [("column", "t.at", 5), ("column", "t.kind", 5), ("column", "t.id", 0)]
    assert dbstate.data_lost(destroyed, defaults) == [("column", "t.at", 5), ("column", "t.kind", 2)]


# --- the reference service with migrations added for the purpose --------------------------------------------------
RENAME = '''"""A release that renames a column the previous release reads."""
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.alter_column("charts", "name", new_column_name="title")


def downgrade() -> None:
    op.alter_column("charts", "title", new_column_name="name")
'''
NULLABLE_ADD = '''"""A release that adds a nullable column."""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("charts", sa.Column("notes", sa.Text))


def downgrade() -> None:
    op.drop_column("charts", "notes")
'''
RENAME_AND_DATA = '''"""A release that renames a column the previous release reads and writes data into a new column."""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.alter_column("charts", "name", new_column_name="title")
    op.add_column("charts", sa.Column("notes", sa.Text))
    op.execute("UPDATE charts SET notes = 'note ' || id")


def downgrade() -> None:
    op.drop_column("charts", "notes")
    op.alter_column("charts", "title", new_column_name="name")
'''


def tolerant_history(source: Path) -> None:
    """The reference tree as a history whose previous release (v1.0.0 = the 1.1.0 code reporting 1.0.0, head 0002)
    answers healthy at a schema revision it does not know (the reference's own health pins its head, so no code-only
    rollback of it is ever safe: see the last test): the release is that tree reporting 1.1.0 with one migration
    more. (The version matters: code that does not report release.previous_version proves no rollback choice.)"""
    app, package = source / "kundli/app.py", source / "kundli/__init__.py"
    pinned = 'ok = database == "ok" and revision == svc.head'
    assert pinned in app.read_text() and '__version__ = "1.1.0"' in package.read_text()
    app.write_text(app.read_text().replace(pinned, 'ok = database == "ok" and revision is not None'))
    package.write_text(package.read_text().replace('__version__ = "1.1.0"', '__version__ = "1.0.0"'))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "previous"], ["tag", "v1.0.0"]):
        subprocess.run([*git, *command], cwd=source, check=True, capture_output=True)
    package.write_text(package.read_text().replace('__version__ = "1.0.0"', '__version__ = "1.1.0"'))


def rollback_choice(bench, healthy, source: Path | None, migration: str = "") -> tuple[str, str, dict]:
    """Prepare rollback plan on the reference (with the migration added to a tolerant history); the live database
    untouched."""
    changes = {}
    if source is not None:
        tolerant_history(source)
        (source / "migrations/versions/0003_purpose.py").write_text(migration)
        changes = {"target": {"source": str(source), "repository": str(source)}}
    with healthy.database() as conn:
        live_before = conn.execute("SELECT * FROM alembic_version").fetchall(), migrations.relations(conn)
    checked = bench.run(bench.config(changes, target=healthy), "-k", "rollback_plan")
    with healthy.database() as conn:
        assert (conn.execute("SELECT * FROM alembic_version").fetchall(), migrations.relations(conn)) == live_before
    facts = checked.facts(
        "test_prepare_rollback_plan", "Which rollback is safe (the previous release's code on the scratch copy)"
    )
    # the bench's target has no service manager: the plan is not verified for that, never for the choice
    status, reason = checked.status("test_prepare_rollback_plan"), checked.reason("test_prepare_rollback_plan")
    assert (status, reason.split(":")[0]) == ("not verified", "the rollback is not verified"), reason
    rows = next(b for b in checked.evidence("test_prepare_rollback_plan") if b["title"].startswith("Rows through"))
    return status, facts["rollback"], {**facts, "rows through the downgrade": rows["rows"]}


@pytest.mark.slow
def test_a_renamed_column_the_previous_release_reads_needs_the_downgrade(bench, healthy, scratch_source):
    _, rollback, _ = rollback_choice(bench, healthy, scratch_source, RENAME)
    assert rollback.startswith("needs the downgrade: the previous release fails on calculate a chart (POST /v1/kundli")
    assert 'column "name" of relation "charts" does not exist' in rollback


@pytest.mark.slow
def test_a_nullable_add_is_a_safe_code_only_rollback(bench, healthy, scratch_source):
    _, rollback, facts = rollback_choice(bench, healthy, scratch_source, NULLABLE_ADD)
    assert rollback == SAFE, facts
    # the previous release's critical paths wrote charts on the upgraded copy: rows the downgrade starts from, not
    # rows it lost (counted from the backup, they read as "rows lost by the down-migration": a false alarm)
    rows = facts["rows through the downgrade"]
    assert rows and all(before == after for _, before, after in rows), rows


@pytest.mark.slow
def test_a_downgrade_that_drops_data_this_release_wrote_needs_the_restore(bench, healthy, scratch_source):
    birth = {"datetime": "1990-08-15T10:00:00+05:30", "latitude": 28.61, "longitude": 77.21}
    written = healthy.http.request("POST", "/v1/kundli", "operator", json_body={"name": "before", "birth": birth})
    assert written.status == 201  # the live data has a chart for the release's migration to write notes on
    _, rollback, facts = rollback_choice(bench, healthy, scratch_source, RENAME_AND_DATA)
    assert rollback.startswith("needs the restore: the downgrade loses data written by this release (charts.notes: ")
    assert "code-only: the previous release fails on calculate a chart" in rollback
    assert "charts.ayanamsa" not in facts["data the downgrade loses"]  # its constant default only


@pytest.mark.slow
def test_the_reference_release_states_which_rollback_is_safe(bench, healthy):
    """1.0.0 -> 1.1.0: 1.0.0's health answers 503 at a schema revision newer than its head, so the code-only
    rollback is not safe; the downgrade loses only the constant default of charts.ayanamsa (no data)."""
    _, rollback, facts = rollback_choice(bench, healthy, None)
    assert rollback.startswith(
        "needs the downgrade: the previous release fails on start-up: service not healthy within 15s (GET http://"
    )
    assert '/health -> HTTP 503): {"status":"unavailable","database":"ok","schema_revision":"0002"' in rollback
    assert facts["data the downgrade loses"] == "none"


def test_relcheck_rollback_code_only_refuses_in_one_line_what_the_plan_found_unsafe(tmp_path):
    path = tmp_path / "relcheck.toml"
    path.write_text(
        '[release]\nproduct = "p"\nversion = "1.1.0"\nprevious_version = "1.0.0"\n'
        '[target]\nmode = "remote"\nbase_url = "http://127.0.0.1:9"\nsource = "."\n'
    )
    cfg = load(path)
    records.deploy_record_path(cfg).parent.mkdir(parents=True)
    records.deploy_record_path(cfg).write_text('{"backup": {"path": "x.dump", "sha256": ""}}')
    refused = relcheck_cli(path, "rollback", "--code-only")
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "refusing the code-only rollback: no rollback choice recorded at " in refused.stderr
    choice = records.rollback_choice_path(cfg)
    choice.parent.mkdir(parents=True)
    choice.write_text(json.dumps(recorded(DOWNGRADE, "needs the downgrade: the previous release fails")))
    run = records.release_dir(cfg) / "pre-deploy" / "manifest.json"
    run.write_text(json.dumps({"run": {**LAST_RUN["run"], "markexpr": "pre_deploy", "partial": []}}))
    refused = relcheck_cli(path, "rollback", "--code-only")
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert refused.stderr.strip().endswith(
        "refusing the code-only rollback: the rollback plan says the code-only rollback is not safe: needs the "
        "downgrade: the previous release fails"
    )


def test_the_previous_release_is_not_started_without_a_command_or_without_the_copy_s_dsn(tmp_path):
    path = tmp_path / "relcheck.toml"
    base = '[release]\nproduct = "p"\nversion = "1.1.0"\nprevious_version = "1.0.0"\n[target]\nmode = "remote"\n'
    base += 'base_url = "http://127.0.0.1:9"\nsource = "."\n'
    path.write_text(base)
    live = SimpleNamespace(dsn="postgresql://app@127.0.0.1:5/live", http=SimpleNamespace(tokens={}))
    copy = "postgresql://app@127.0.0.1:5/relcheck_scratch_x"
    run = run_previous(load(path), live, tmp_path, copy, "code-only")
    assert (run.started, run.unverified) == (
        False,
        "deploy.previous_start is not configured: how to start the previous release's code on the scratch copy",
    )
    no_dsn = '[deploy]\nprevious_start = ["{python}", "-m", "app"]\nprevious_env = { APP_PORT = "{port}" }\n'
    path.write_text(base + no_dsn)
    run = run_previous(load(path), live, tmp_path, copy, "code-only")
    assert not run.started and run.unverified.startswith("deploy.previous_start / deploy.previous_env hand the")
    assert run_previous(load(path), live, None, copy, "full").unverified.startswith("no tree of the previous release")


@pytest.mark.slow
def test_migrations_without_a_downgrade_leave_the_rollback_plan_not_verified_naming_the_key(bench, healthy):
    """Kinto as a new user sets deploy.migrate (`kinto migrate`) and has no downgrade: one line naming the key, no
    IndexError from an empty command."""
    checked = bench.run(bench.config({"deploy": {"downgrade": []}}, target=healthy), "-k", "rollback_plan")
    reason = checked.reason("test_prepare_rollback_plan")
    assert checked.status("test_prepare_rollback_plan") == "not verified", reason
    assert reason.startswith("deploy.downgrade is empty while deploy.migrate is set"), reason
