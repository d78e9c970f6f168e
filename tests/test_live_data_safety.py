"""Live-data safety, on a third-party-style service that reads POSTGRES_* settings (tests/shop.py): whatever the
config or the caller's environment says, relcheck's steps meant for a scratch copy never touch the live database,
each case ends in a non-pass naming its cause, and no relcheck database is left on the server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import shop
from fakes import SystemdHost

from conftest import REPO, relcheck_cli
from relcheck.core.config import ConfigError, load
from relcheck.probes import backup
from relcheck.run import runner
from relcheck.run.runner import write_config
from relcheck.target import postgres, scratch
from relcheck.target.service import wait_until


@pytest.fixture
def live(runtime, request):
    """A live database of the shop service at v1.1.0 with users (an admin who must still log in) and items."""
    name = f"shop_{zlib.crc32(request.node.nodeid.encode()):08x}"
    dsn = runtime.pg.create_database(name, runtime.recipe.user, runtime.password)
    tree = runtime.workdir / f"{name}-tree"
    shop.history(tree)
    shop.migrate(tree, dsn, "upgrade", "head")
    shop.seed(dsn)
    yield {"dsn": dsn, "admin_dsn": runtime.pg.admin_dsn(name), "tree": tree, "name": name, "before": shop.state(dsn)}
    assert not shop.scratch_databases(runtime.pg.admin_dsn()), "a relcheck scratch database was left behind"


@pytest.fixture
def shop_bench(bench, healthy, live, tmp_path):
    """bench.config(changes) for the shop service as a remote target (systemd stand-in as its service manager)."""
    host = SystemdHost(tmp_path / "app1", {"shop.service": True})
    bench.env.update({"SHOP_DSN": live["dsn"], "SHOP_ADMIN_DSN": live["admin_dsn"]})
    base = shop.config_changes(live["tree"], live["tree"])
    base["target"].update(
        {
            "dsn": "env:SHOP_DSN",
            "admin_dsn": "env:SHOP_ADMIN_DSN",
            "service": {"manager": "systemd", "unit": "shop.service", "command_prefix": host.prefix},
        }
    )

    def config(changes: dict | None = None, tests_env: dict = shop.SCRATCH_ENV, deploy_env: dict = shop.DEPLOY_ENV):
        """The environments replace the defaults' (a merge would keep their POSTGRES_* keys)."""
        data = runner.read_config(bench.config(runner.merge(base, changes or {}), target=healthy))
        data["quality"]["tests"]["env"], data["deploy"]["env"] = tests_env, deploy_env
        return write_config(data, bench.tmp / "relcheck.toml")

    bench.shop_config = config
    return bench


def assert_live_untouched(live) -> None:
    assert shop.state(live["dsn"]) == live["before"]
    assert shop.admin_can_log_in(live["dsn"])


def test_the_tests_run_on_a_scratch_database_and_leave_the_live_one_alone(shop_bench, live):
    no_start = {"deploy": {"previous_start": []}}  # the shop is a migration tree: no code to start
    checked = shop_bench.run(shop_bench.shop_config(no_start), "-k", "all_tests_passing or prepare_rollback_plan")
    assert checked.status("test_all_tests_passing") == "pass", checked.reason("test_all_tests_passing")
    isolation = checked.facts("test_all_tests_passing", "Isolation")
    assert isolation["scratch database"].startswith("relcheck_scratch_")
    assert isolation["left there by the tests"].startswith("3 tables") and isolation["live schema"] == "unchanged"
    # which rollback is safe cannot be told, never a pass
    assert (checked.status("test_prepare_rollback_plan"), checked.reason("test_prepare_rollback_plan")) == (
        "not verified",
        "which rollback is safe is not verified: deploy.previous_start is not configured: how to start the previous "
        "release's code on the scratch copy",
    )
    steps = checked.evidence("test_prepare_rollback_plan")
    rehearsal = next(b for b in steps if b["title"].startswith("Down-migration rehearsal"))["rows"]
    assert [row[2] for row in rehearsal] == ["scratch copy at 0002; live schema unchanged"] * 3 + [
        "relcheck starts the release only on its embedded target",  # the release's own writes: not rehearsed here
    ] + ["scratch copy at 0001; live schema unchanged"] * 2 + ["scratch copy at 0002; live schema unchanged"]
    destroyed = next(b for b in steps if b["title"] == "What the down-migration destroys")["rows"]
    assert destroyed == [["column", "item.created_at", "2"]]
    assert_live_untouched(live)


def test_prepare_steps_run_on_the_scratch_database_before_the_tests(shop_bench, live):
    migrate = ["{python}", "-m", "shop.migrate", "upgrade", "head"]
    checked = shop_bench.run(shop_bench.shop_config({"quality": {"tests": {"prepare": [migrate]}}}), "-k", "all_tests")
    assert checked.status("test_all_tests_passing") == "pass", checked.reason("test_all_tests_passing")
    broken = [["{python}", "-m", "shop.migrate", "downgrade", "no-such-revision"]]
    checked = shop_bench.run(shop_bench.shop_config({"quality": {"tests": {"prepare": broken}}}), "-k", "all_tests")
    assert checked.status("test_all_tests_passing") == "not verified"
    assert checked.reason("test_all_tests_passing").startswith(
        "the tests could not be prepared: quality.tests.prepare[0] failed (exit 1)"
    )
    assert_live_untouched(live)


def test_tests_that_ignore_the_scratch_variable_and_inherit_a_live_environment_cannot_reach_it(shop_bench, live):
    """The service ignores DATABASE_URL; the caller's shell has POSTGRES_* naming the live database."""
    shop_bench.env.update(shop.postgres_env(live["dsn"]))
    config = shop_bench.shop_config(tests_env={"DATABASE_URL": "{scratch_dsn}"})
    checked = shop_bench.run(config, "-k", "all_tests_passing")
    assert checked.status("test_all_tests_passing") == "fail"
    assert "the tests did not use the scratch database relcheck_scratch_" in checked.reason("test_all_tests_passing")
    assert_live_untouched(live)


@pytest.mark.parametrize(
    "environment, check, variable, status",
    [
        # relcheck's own run of the tests is refused: they did not run, so the item is not verified, naming the key
        ("tests_env", "test_all_tests_passing", "quality.tests.env.POSTGRES_DB", "not verified"),
        # the rollback plan's own step would reach the live database: a defect of the plan
        ("deploy_env", "test_prepare_rollback_plan", "deploy.env.POSTGRES_DB", "fail"),
    ],
)
def test_a_scratch_step_whose_environment_names_the_live_database_is_refused(
    shop_bench, live, environment, check, variable, status
):
    defaults = shop.SCRATCH_ENV if environment == "tests_env" else shop.DEPLOY_ENV
    config = shop_bench.shop_config(**{environment: {**defaults, "POSTGRES_DB": live["name"]}})
    checked = shop_bench.run(config, "-k", check.removeprefix("test_"))
    assert checked.status(check) == status
    assert f"{variable} names the live database {live['name']}" in checked.reason(check)
    assert_live_untouched(live)


def test_a_rehearsal_that_reaches_the_live_database_anyway_fails_naming_the_change(shop_bench, live, runtime):
    """A setting relcheck cannot see (a .env file in the tree) points the migrations at a sacrificial 'live' copy:
    the look after the downgrade sees the dropped column, although the upgrade after it puts it back."""
    sacrificial = runtime.pg.create_database(f"{live['name']}_x", runtime.recipe.user, runtime.password)
    shop.migrate(live["tree"], sacrificial, "upgrade", "head")
    shop.seed(sacrificial)
    (live["tree"] / ".env").write_text("\n".join(f"{k}={v}" for k, v in shop.postgres_env(sacrificial).items()))
    shop_bench.env["SHOP_DSN"] = sacrificial
    config = shop_bench.shop_config(deploy_env={})
    checked = shop_bench.run(config, "-k", "prepare_rollback_plan")
    (live["tree"] / ".env").unlink()
    assert checked.status("test_prepare_rollback_plan") == "fail"
    reason = checked.reason("test_prepare_rollback_plan")
    assert reason.startswith("down-migration rehearsal failed: the live database changed during the rehearsal ("), (
        reason
    )
    assert "column item.created_at dropped" in reason


def test_a_downgrade_that_changes_nothing_fails_the_rollback_plan(shop_bench, live):
    config = shop_bench.shop_config({"deploy": {"downgrade": ["{python}", "-m", "shop.migrate", "heads"]}})
    checked = shop_bench.run(config, "-k", "prepare_rollback_plan")
    assert checked.status("test_prepare_rollback_plan") == "fail"
    assert "downgrade to 0001 left the scratch copy at schema version 0002, not 0001" in checked.reason(
        "test_prepare_rollback_plan"
    )
    assert_live_untouched(live)


def test_a_rollback_plan_that_cannot_run_fails_and_its_dry_run_exits_non_zero(shop_bench, live):
    config = shop_bench.shop_config(
        {"target": {"service": {"manager": "none"}}, "release": {"previous_version": "0.9.0"}}
    )
    checked = shop_bench.run(config, "-k", "prepare_rollback_plan")
    assert checked.status("test_prepare_rollback_plan") == "fail"
    record = shop_bench.tmp / "record.json"
    record.write_text('{"backup": {"path": "shop.dump", "sha256": ""}}')
    result = relcheck_cli(config, "rollback", "--dry-run", "--record", str(record), env=shop_bench.env)
    assert result.returncode == 1, result.stderr
    assert "cannot rollback: Stop application services: no service manager" in result.stderr
    assert "cannot rollback: Deploy code: v0.9.0 is not in the service's history" in result.stderr
    missing = shop_bench.shop_config({"deploy": {"install": ["{python}", "-m", "pip", "install", "-r", "req.txt"]}})
    result = relcheck_cli(missing, "deploy", "--dry-run", env=shop_bench.env)
    assert result.returncode == 1 and "Deploy code: req.txt (deploy.install) is not in v1.1.0" in result.stderr
    assert_live_untouched(live)


def test_a_service_without_migrations_rolls_back_by_its_backup_and_no_service_manager_is_not_verified(shop_bench, live):
    none = {"deploy": {"migrate": [], "downgrade": []}}
    checked = shop_bench.run(shop_bench.shop_config(none), "-k", "prepare_rollback_plan")
    assert checked.status("test_prepare_rollback_plan") == "pass", checked.reason("test_prepare_rollback_plan")
    rehearsal = next(b for b in checked.evidence("test_prepare_rollback_plan") if b["title"].startswith("Down-"))
    assert rehearsal["rows"] == [["no migrations (deploy.migrate = [])", "nothing to rehearse", "-"]]
    unmanaged = runner.merge(none, {"target": {"service": {"manager": "none"}}})
    checked = shop_bench.run(shop_bench.shop_config(unmanaged), "-k", "prepare_rollback_plan")
    assert checked.status("test_prepare_rollback_plan") == "not verified"
    assert checked.reason("test_prepare_rollback_plan").startswith(
        "the rollback is not verified: Stop application services: no service manager"
    )
    assert_live_untouched(live)


def test_rollback_keeps_the_writes_since_the_backup_and_refuses_to_discard_them_unasked(shop_bench, live, tmp_path):
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(live["tree"]), str(checkout)], check=True)
    config = shop_bench.shop_config({"deploy": {"checkout": str(checkout), "backups_keep": 1}})
    deployed = relcheck_cli(config, "deploy", env=shop_bench.env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    with psycopg.connect(live["dsn"], autocommit=True) as conn:  # business goes on after the deploy
        conn.execute("INSERT INTO item (name) VALUES ('after-1'), ('after-2')")
        conn.execute("UPDATE users SET name = 'ravi.k' WHERE name = 'ravi'")
    after_deploy = shop.state(live["dsn"])
    refused = relcheck_cli(config, "rollback", env=shop_bench.env)
    assert refused.returncode == 1
    assert "would discard 3 rows written since the backup (item: 2 rows; users: 1 rows)" in refused.stdout
    assert "nothing was changed, the service is running again" in refused.stdout
    assert "next: nothing was changed and the deployed release runs again: resolve the cause" in refused.stdout
    assert shop.state(live["dsn"]) == after_deploy  # nothing changed
    rolled = relcheck_cli(config, "rollback", "--accept-data-loss", env=shop_bench.env)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert shop.state(live["dsn"])["item"][1] == live["before"]["item"][1]
    incident = json.loads(next((shop_bench.tmp / "reports").rglob("incident.json")).read_text())
    kept = incident["data_before_restore"]
    assert kept["proven"] and os.stat(kept["path"]).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(kept["path"])).st_mode & 0o777 == 0o700
    assert {d["table"]: d["rows"] for d in incident["discarded_by_restore"]} == {"item": 2, "users": 1}
    kept_dumps = sorted(p.name for p in backup.Path(kept["path"]).parent.glob("*.dump"))
    assert len(kept_dumps) == 2 and "-before-1.1.0-" in kept_dumps[0]  # backups_keep = 1, and the deploy's
    assert kept_dumps[1] == os.path.basename(kept["path"])


def group_members(leader: int) -> list[int]:
    """The processes of leader's process group other than the leader (its children still running)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == leader and int(stat.parent.name) != leader:
                members.append(int(stat.parent.name))
    return members


def test_scratch_databases_are_dropped_on_sigterm_and_a_crashed_runs_leftover_at_the_next_start(
    shop_bench, live, runtime
):
    shop_bench.env["SHOP_TEST_SLEEP"] = "60"
    config = shop_bench.shop_config()
    admin = runtime.pg.admin_dsn()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        run = subprocess.Popen(
            runner.checks_command(config, "", ["-k", "all_tests_passing"]),
            cwd=REPO,
            env={**os.environ, **shop_bench.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not shop.scratch_databases(admin) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert shop.scratch_databases(admin), "the run never created its scratch database"
        while not group_members(run.pid) and time.monotonic() < deadline:  # the target's tests have started
            time.sleep(0.1)
        assert group_members(run.pid), "the target's test run never started"
        os.kill(run.pid, sig)
        run.wait(timeout=60)
        if sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):  # the target's test run it left behind, if still there
                os.killpg(run.pid, signal.SIGKILL)
    leftover = shop.scratch_databases(admin)
    assert len(leftover) == 1  # SIGTERM cleaned up; SIGKILL could not
    shop_bench.env["SHOP_TEST_SLEEP"] = "0"
    checked = shop_bench.run(config, "-k", "all_tests_passing")
    assert checked.manifest["run"]["target"]["scratch databases a crashed run left, dropped"] == leftover[0]
    assert_live_untouched(live)


def test_scratch_names_markers_and_refusals(healthy, runtime):
    assert scratch.scratch_name("tests").startswith(scratch.PREFIX) and len(scratch.scratch_name("tests")) <= 63
    with pytest.raises(scratch.ScratchRefused, match="it is one of the target's databases"):
        scratch.refuse_unless_scratch("kundli_db", healthy)
    with pytest.raises(scratch.ScratchRefused, match="scratch names start with relcheck_scratch_"):
        scratch.drop(healthy, "analytics")
    unmarked = f"{scratch.PREFIX}not_ours"
    with psycopg.connect(runtime.pg.admin_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{unmarked}"')
    with pytest.raises(scratch.ScratchRefused, match="it has no relcheck marker"):
        scratch.drop(healthy, unmarked)
    assert unmarked not in scratch.sweep(healthy)
    with psycopg.connect(runtime.pg.admin_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{unmarked}"')
    with scratch.scratch_database(healthy, "unit") as made:
        assert made.parts.db == made.name and made.parts.placeholders("scratch")["scratch_dsn"] == made.dsn
        with psycopg.connect(runtime.pg.admin_dsn("postgres"), autocommit=True) as conn:
            assert scratch.marker_of(conn, made.name)["run"] == scratch.RUN_ID
    assert made.name not in shop.scratch_databases(runtime.pg.admin_dsn())


def test_a_configured_scratch_database_name_is_a_config_error(tmp_path):
    from conftest import default_config_data
    from relcheck.run.runner import merge

    path = write_config(
        merge(default_config_data(), {"quality": {"tests": {"scratch_database": "kundli_db"}}}),
        tmp_path / "relcheck.toml",
    )
    with pytest.raises(ConfigError, match="scratch_database: no longer configurable") as error:
        load(path)
    assert "\n" not in str(error.value)


def test_backup_files_are_private_and_pruned(tmp_path):
    directory = tmp_path / "backups"
    made = [backup.new_dump_file(directory, f"db-{n}") for n in range(4)]
    for n, path in enumerate(made):
        os.utime(path, (1000 + n, 1000 + n))
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in made) and directory.stat().st_mode & 0o777 == 0o700
    removed = backup.prune(directory, 2, protect={made[0]})
    assert removed == [made[1]] and sorted(directory.glob("*.dump")) == sorted([made[0], made[2], made[3]])


def test_relcheck_sessions_on_the_live_database_are_read_only(healthy):
    with healthy.database() as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 3
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE relcheck_was_here (id int)")
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        postgres.query(healthy.dsn, "DELETE FROM users")


# --- Backups under write traffic ------------------------------------------------------------------------------
class Writes(threading.Thread):
    """Business going on: an insert and an update in the live database, committed one after another until stopped
    (at most `limit`), counted."""

    def __init__(self, dsn: str, limit: int = 50_000) -> None:
        super().__init__(daemon=True)
        self.dsn, self.limit, self.count, self.stop = dsn, limit, 0, threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while self.count < self.limit and not self.stop.wait(0.005):
                conn.execute("INSERT INTO item (name) VALUES (%s)", (f"w{self.count}",))
                conn.execute("UPDATE item SET name = name || '+' WHERE id = (SELECT min(id) FROM item)")
                self.count += 1

    def wait_for(self, more: int) -> None:
        """Until `more` further writes have committed."""
        target = self.count + more
        assert wait_until(lambda: self.count >= target, 60, interval=0.01), "the writes stopped"

    def __enter__(self) -> Writes:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join(timeout=60)


WAITING_PG_DUMP = """#!{python}
import os, sys, time
import psycopg
with psycopg.connect({dsn!r}, autocommit=True) as conn:
    count = lambda: conn.execute("SELECT count(*) FROM item").fetchone()[0]
    start, deadline = count(), time.monotonic() + 60
    while count() < start + 5:
        if time.monotonic() > deadline:
            sys.exit("no writes while the backup was taken")
        time.sleep(0.02)
    with open({seen!r}, "w") as seen:
        seen.write(str(count() - start))
os.execv({pg_dump!r}, ["pg_dump", *{extra!r}, *sys.argv[1:]])
"""


def waiting_pg_bin_dir(directory, live, extra: tuple[str, ...] = ()) -> str:
    """pg_dump and pg_restore for deploy.pg_bin_dir. This pg_dump starts the real one (with `extra` arguments) only
    once 5 more writes have committed in the live database since relcheck called it, i.e. after relcheck exported
    its snapshot, and writes how many it saw into writes-seen."""
    directory.mkdir()
    (directory / "pg_restore").symlink_to(postgres.client_tool("pg_restore"))
    script = directory / "pg_dump"
    script.write_text(
        WAITING_PG_DUMP.format(
            python=sys.executable,
            dsn=live["dsn"],
            seen=str(directory / "writes-seen"),
            pg_dump=postgres.client_tool("pg_dump"),
            extra=list(extra),
        )
    )
    script.chmod(0o755)
    return str(directory)


def items(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM item").fetchone()[0]


def test_a_backup_taken_under_write_traffic_is_proven_in_its_snapshot(shop_bench, live, tmp_path):
    """Writes commit between relcheck's snapshot and pg_dump's start, and go on through the proof: the dump and the
    source's fingerprints read the snapshot, so the proof holds. A dump that leaves a table's data out still fails."""
    bin_dir = waiting_pg_bin_dir(tmp_path / "bin", live)
    with Writes(live["dsn"]):
        checked = shop_bench.run(shop_bench.shop_config({"deploy": {"pg_bin_dir": bin_dir}}), "-k", "backup_current")
    assert checked.status("test_backup_current_system") == "pass", checked.reason("test_backup_current_system")
    assert int((tmp_path / "bin" / "writes-seen").read_text()) >= 5
    table = next(b for b in checked.evidence("test_backup_current_system") if b["title"] == "Source vs restored")
    item = next(row for row in table["rows"] if row[0] == "public.item")
    assert item[1] == item[2] and int(item[1]) < items(live["dsn"])  # the backup's state, not today's
    bin_dir = waiting_pg_bin_dir(tmp_path / "bin-no-items", live, ("--exclude-table-data=item",))
    with Writes(live["dsn"]):
        checked = shop_bench.run(shop_bench.shop_config({"deploy": {"pg_bin_dir": bin_dir}}), "-k", "backup_current")
    assert checked.status("test_backup_current_system") == "fail"
    assert checked.reason("test_backup_current_system") == "restored data differs from the source in: public.item"


def test_relcheck_deploy_backs_up_and_deploys_while_writes_go_on(shop_bench, live, tmp_path):
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(live["tree"]), str(checkout)], check=True)
    bin_dir = waiting_pg_bin_dir(tmp_path / "bin", live)
    config = shop_bench.shop_config({"deploy": {"checkout": str(checkout), "pg_bin_dir": bin_dir}})
    with Writes(live["dsn"]):
        deployed = relcheck_cli(config, "deploy", env=shop_bench.env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert int((tmp_path / "bin" / "writes-seen").read_text()) >= 5
    record = json.loads(next((shop_bench.tmp / "reports").rglob("deploy/record.json")).read_text())
    assert record["backup"]["tables"]["public.item"]["rows"] < items(live["dsn"])


def test_the_backup_is_not_verified_when_it_cannot_be_made(shop_bench, live):
    refused = live["admin_dsn"].replace("postgres@", "nobody@")  # no scratch database to restore into
    shop_bench.env["SHOP_ADMIN_DSN"] = refused
    checked = shop_bench.run(shop_bench.shop_config(), "-k", "backup_current")
    assert checked.status("test_backup_current_system") == "not verified"
    assert 'admin database: role "nobody" does not exist' in checked.reason("test_backup_current_system")


@pytest.fixture
def prove(live, runtime, tmp_path):
    """prove(**changes): backup.prove of the live database into a fresh database on the same server."""
    made = iter(range(100))

    def run(**changes) -> backup.Proof:
        n = next(made)
        arguments = {
            "path": tmp_path / f"proof-{n}.dump",
            "source_dsn": live["dsn"],
            "scratch_dsn": runtime.pg.create_database(f"{live['name']}_{n}", runtime.recipe.user, runtime.password),
            "pg_dump": postgres.client_tool("pg_dump"),
            "pg_restore": postgres.client_tool("pg_restore"),
        }
        return backup.prove(**{**arguments, **changes})

    return run


def test_a_backup_proof_that_could_not_be_made_is_not_verified(prove, live, tmp_path):
    missing = prove(pg_dump=str(tmp_path / "no-such-pg_dump"))
    assert (
        not missing.proven
        and missing.unverified.endswith("command not found: " + str(tmp_path / "no-such-pg_dump"))
        and not missing.error
    )
    refused = prove(source_dsn=live["dsn"].replace(f"{postgres.user_of(live['dsn'])}", "nobody", 1))
    assert not refused.proven and refused.unverified.startswith('source database: role "nobody" does not exist')


def test_a_backup_commands_file_is_proven_unless_writes_make_it_incomparable(prove, live, runtime, tmp_path):
    """deploy.backup_command's file (relcheck cannot put the command in its snapshot): proven when it restores to
    the database as it was; a difference is a failure only if nothing was written meanwhile, else not verified."""
    pg_dump = postgres.client_tool("pg_dump")

    def dump_of(dsn: str, path) -> Callable[[], object]:
        return lambda: subprocess.run([pg_dump, "-Fc", "-f", str(path), "--dbname", dsn], check=True)

    path = tmp_path / "custom.dump"
    proven = prove(path=path, backup_command=dump_of(live["dsn"], path))
    assert proven.proven, proven.problem
    other = runtime.pg.create_database(f"{live['name']}_other", runtime.recipe.user, runtime.password)
    shop.migrate(live["tree"], other, "upgrade", "head")  # the same schema, no rows
    wrong = prove(path=path, backup_command=dump_of(other, path))
    assert not wrong.proven and not wrong.unverified and not wrong.error
    assert [c.table for c in wrong.comparisons if not c.equal] == ["public.item", "public.users"]
    with Writes(live["dsn"]) as writes:

        def while_written() -> None:
            writes.wait_for(5)  # after the fingerprints before the command
            dump_of(live["dsn"], path)()
            writes.wait_for(5)  # before the fingerprints after the restore

        written = prove(path=path, backup_command=while_written)
    assert not written.proven and not written.error
    assert written.unverified.startswith(
        "not comparable: the database was written while deploy.backup_command ran (public.item changed)"
    )
