"""What a migration costs: the predicted blocking time judged over exact statements, the capture measuring real locks
on a table of many rows (an index without CONCURRENTLY, a NOT NULL column backfilled under the lock, a type change
that rewrites; a nullable add and a concurrent index pass), and the reference service with a migration that holds a
lock too long, caught by *Prepare rollback plan* on the scratch copy while the live database stays untouched."""

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from relcheck.core.errors import ToolError
from relcheck.probes import migrations
from relcheck.probes.migrations import Relation, Upgrade
from relcheck.target import capture
from relcheck.target.capture import Statement

ORDERS, USERS, CREATED = 100, 101, 200  # oids: two tables the service uses, one the migration creates
BEFORE = {ORDERS: Relation(ORDERS, "public.orders", 1, 8192), USERS: Relation(USERS, "public.users", 2, 8192)}
AE, SHARE = {"AccessExclusiveLock"}, {"ShareLock"}


def statement(sql, started, ended, in_transaction=True, pid=7, **locks):
    return Statement(pid, sql, started, ended, in_transaction, {oid: modes for oid, modes in locks.values()})


def test_a_lock_counts_from_the_statement_that_took_it_to_the_end_of_its_transaction():
    upgrade = Upgrade(
        [
            statement("BEGIN", 0.0, 0.001),
            statement("ALTER TABLE orders ADD COLUMN region text", 0.001, 0.002, orders=(ORDERS, AE)),
            statement("UPDATE orders SET region = 'x'", 0.002, 6.5, orders=(ORDERS, AE)),
            statement("CREATE TABLE notes (id int)", 6.5, 6.6, orders=(ORDERS, AE), notes=(CREATED, AE)),
            statement("COMMIT", 6.6, 6.7, in_transaction=False, orders=(ORDERS, AE)),
            statement("CREATE INDEX ix ON users (name)", 7.0, 7.4, in_transaction=False, users=(USERS, SHARE)),
        ],
        BEFORE,
        BEFORE,
    )
    cost = migrations.judge(upgrade, {"public.orders": 1_000_000}, max_blocking_s=5)
    assert [(b.relation, b.blocks, b.seconds) for b in cost.blocking] == [
        ("public.orders", "reads and writes", 6.699),
        ("public.users", "writes", 0.4),
    ]  # the table the migration created blocks nobody
    assert cost.predicted_blocking_s == 6.699
    orders = cost.blocking[0]
    assert orders.statement == "ALTER TABLE orders ADD COLUMN region text"
    assert orders.slowest == "UPDATE orders SET region = 'x'" and orders.slowest_s == 6.498
    assert cost.problem == (
        "public.orders locked against reads and writes for 6.7 s (> deploy.max_blocking_s = 5) from ALTER TABLE "
        "orders ADD COLUMN region text, while UPDATE orders SET region = 'x' ran 6.5 s; safer: backfill in batches, "
        "each in its own transaction, outside the one that alters the table"
    )
    assert cost.tables == [("public.orders", 1_000_000, 8192), ("public.users", None, 8192)]
    assert migrations.judge(upgrade, {}, max_blocking_s=7).problem == ""


def test_a_session_that_ends_inside_its_transaction_still_counts_its_locks():
    upgrade = Upgrade(
        [
            statement("BEGIN", 0, 0.1),
            statement("ALTER TABLE users ALTER COLUMN name TYPE text", 0.1, 9.1, u=(USERS, AE)),
        ],
        BEFORE,
        {**BEFORE, USERS: Relation(USERS, "public.users", 3, 8192)},
    )
    cost = migrations.judge(upgrade, {}, max_blocking_s=5)
    assert [(b.relation, b.seconds) for b in cost.blocking] == [("public.users", 9.0)]
    assert "safer: add a new column, backfill it in batches" in cost.problem
    assert cost.statements[1][3] == "public.users"  # rewrote: its file node changed


def test_squawk_findings_are_attributed_to_their_statements_and_to_the_measured_lock():
    upgrade = Upgrade(
        [
            statement("SELECT version_num FROM alembic_version", 0, 0.001, in_transaction=False),
            statement("BEGIN", 0.001, 0.002),
            statement("CREATE INDEX ix_orders_region ON orders (region)", 0.002, 6.0, o=(ORDERS, SHARE)),
            statement("ALTER TABLE orders\n  ALTER COLUMN amount TYPE bigint", 6.0, 6.001, o=(ORDERS, AE | SHARE)),
            statement("COMMIT", 6.001, 6.002, in_transaction=False, o=(ORDERS, AE | SHARE)),
        ],
        BEFORE,
        BEFORE,
    )
    findings = migrations.lint(upgrade.statements, migrations.pg_version("16.4 (Debian 16.4-1)"))
    rules = {(f.rule, f.statement) for f in findings}
    assert ("require-concurrent-index-creation", "CREATE INDEX ix_orders_region ON orders (region)") in rules
    assert ("changing-column-type", "ALTER TABLE orders\n  ALTER COLUMN amount TYPE bigint") in rules
    cost = migrations.judge(upgrade, {}, 5, findings)
    assert [(b.blocks, b.seconds) for b in cost.blocking] == [("writes", 6.0), ("reads and writes", 0.002)]
    assert cost.measured("CREATE INDEX ix_orders_region ON orders (region)") == "public.orders: writes 6 s"
    assert "squawk: require-concurrent-index-creation" in cost.problem
    assert "changing-column-type" not in cost.problem  # its lock was short
    assert cost.problem.endswith("safer: CREATE INDEX CONCURRENTLY, outside a transaction")


def test_the_volatile_default_advice_is_for_a_volatile_default_only():
    constant = "ALTER TABLE charts ADD COLUMN ayanamsa TEXT DEFAULT 'lahiri' NOT NULL"
    for sql in (constant, "ALTER TABLE charts ADD COLUMN at timestamptz DEFAULT now()"):
        assert migrations.safer_form([sql], "charts").startswith("a non-volatile default does not rewrite the table")
    for sql in (
        "ALTER TABLE charts ADD COLUMN u uuid DEFAULT gen_random_uuid()",
        "ALTER TABLE t ADD n int DEFAULT (random())",
    ):
        assert migrations.safer_form([sql], sql.split()[2]).startswith("a volatile default rewrites the table")
    assert migrations.safer_form(["ALTER TABLE t ADD COLUMN n int NOT NULL"], "t").startswith("add the column nullable")


def test_squawk_missing_or_a_version_it_cannot_read_is_one_line():
    with pytest.raises(ToolError, match="squawk: command not found"):
        migrations.lint([statement("DROP TABLE x", 0, 1)], "16.0", squawk="/nonexistent/squawk")
    with pytest.raises(Exception, match="cannot read the PostgreSQL version from 'devel'"):
        migrations.pg_version("devel")


def test_a_statement_ending_in_a_comment_leaves_the_next_ones_linted_and_a_syntax_error_is_unread():
    script = ["BEGIN", "CREATE INDEX ix ON t (a) -- why", "ALTER TABLE t ALTER COLUMN a TYPE bigint", "COMMIT"]
    rules = {f.rule for f in migrations.lint([statement(sql, 0, 1) for sql in script], "16.0")}
    assert {"require-concurrent-index-creation", "changing-column-type"} <= rules
    with pytest.raises(ToolError, match="squawk could not parse the migration's SQL"):
        migrations.lint([statement("ALTER TABLE t ADD COLUMN", 0, 1)], "16.0")


def test_at_address_keeps_the_database_and_credentials():
    assert capture.at_address("postgresql://app:p%40ss@/shop?host=/tmp/pg&application_name=x", "127.0.0.1", 5) == (
        "postgresql://app:p%40ss@127.0.0.1:5/shop?application_name=x&sslmode=disable"
    )
    assert conninfo_to_dict(capture.at_address("host=/tmp/pg dbname=shop user=app", "127.0.0.1", 5)) == {
        "host": "127.0.0.1",
        "port": "5",
        "dbname": "shop",
        "user": "app",
        "sslmode": "disable",
    }


# --- measured on PostgreSQL: a table of many rows --------------------------------------------------------------
ROWS = 100_000


@pytest.fixture(scope="module")
def orders_db(runtime):
    """A database of the session's PostgreSQL with a table of ROWS orders."""
    dsn = runtime.pg.create_database("migration_cost", runtime.recipe.user, runtime.password)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, amount int NOT NULL)")
        conn.execute(f"INSERT INTO orders SELECT g, 'c' || (g % 1000), g % 500 FROM generate_series(1, {ROWS}) g")
    return dsn


def rehearsed(dsn: str, *script: str) -> migrations.MigrationCost:
    """The script sent statement by statement as a migration tool sends it (its BEGIN/COMMIT included)."""
    with psycopg.connect(dsn) as conn:
        before = migrations.relations(conn)
    with capture.proxy(dsn) as (through, recorder):
        with psycopg.connect(through, autocommit=True) as conn:
            for sql in script:
                conn.execute(sql)
    assert not recorder.errors
    with psycopg.connect(dsn) as conn:
        after = migrations.relations(conn)
    upgrade = Upgrade(recorder.statements, before, after)
    return migrations.judge(upgrade, {"public.orders": ROWS}, 5, migrations.lint(upgrade.statements, "16.0"))


def test_statements_pipelined_before_one_sync_leave_the_capture_incomplete(orders_db):
    with capture.proxy(orders_db) as (through, recorder):
        with psycopg.connect(through, autocommit=True) as conn, conn.pipeline():
            conn.execute("SELECT 1")
            conn.execute("SELECT count(*) FROM orders")
    assert recorder.errors and "pipelined before one Sync" in recorder.errors[0]


def test_a_view_held_against_reads_counts_as_a_relation_the_service_uses(orders_db):
    with psycopg.connect(orders_db, autocommit=True) as conn:
        conn.execute("CREATE OR REPLACE VIEW big_orders AS SELECT * FROM orders WHERE amount > 400")
    try:
        cost = rehearsed(
            orders_db,
            "BEGIN",
            "CREATE OR REPLACE VIEW big_orders AS SELECT * FROM orders WHERE amount > 450",
            "SELECT pg_sleep(0.3)",
            "COMMIT",
        )
    finally:  # the module's other migrations alter the column it reads
        with psycopg.connect(orders_db, autocommit=True) as conn:
            conn.execute("DROP VIEW big_orders")
    assert any(b.relation == "public.big_orders" and b.blocks == "reads and writes" for b in cost.blocking)


def seconds_of(cost: migrations.MigrationCost, prefix: str) -> float:
    return next(seconds for sql, seconds, _, _ in cost.statements if sql.startswith(prefix))


def test_an_index_without_concurrently_blocks_writes_while_it_builds(orders_db):
    cost = rehearsed(orders_db, "BEGIN", "CREATE INDEX ix_customer ON orders (customer)", "COMMIT")
    (lock,) = cost.blocking
    assert (lock.relation, lock.blocks, lock.mode) == ("public.orders", "writes", "ShareLock")
    assert lock.seconds >= seconds_of(cost, "CREATE INDEX") > 0
    assert lock.safer == "CREATE INDEX CONCURRENTLY, outside a transaction"
    assert cost.measured(lock.statement) == f"public.orders: writes {lock.seconds:g} s"
    assert "require-concurrent-index-creation" in {f.rule for f in cost.findings}


def test_a_not_null_column_backfilled_under_the_lock_blocks_reads_and_writes(orders_db):
    cost = rehearsed(
        orders_db,
        "BEGIN",
        "ALTER TABLE orders ADD COLUMN region text",
        "UPDATE orders SET region = 'north'",
        "ALTER TABLE orders ALTER COLUMN region SET NOT NULL",
        "COMMIT",
    )
    (lock,) = cost.blocking
    assert (lock.relation, lock.blocks, lock.statement) == (
        "public.orders",
        "reads and writes",
        "ALTER TABLE orders ADD COLUMN region text",
    )
    assert lock.slowest == "UPDATE orders SET region = 'north'"
    assert lock.seconds >= seconds_of(cost, "UPDATE") + seconds_of(cost, "ALTER TABLE orders ALTER") - 1e-3
    assert lock.safer.startswith("backfill in batches")


def test_a_type_change_rewrites_the_table_under_an_access_exclusive_lock(orders_db):
    cost = rehearsed(orders_db, "BEGIN", "ALTER TABLE orders ALTER COLUMN amount TYPE bigint", "COMMIT")
    (lock,) = cost.blocking
    assert (lock.blocks, lock.mode) == ("reads and writes", "AccessExclusiveLock")
    assert lock.seconds >= seconds_of(cost, "ALTER TABLE") > 0
    assert [rewrote for sql, _, _, rewrote in cost.statements if sql.startswith("ALTER")] == ["public.orders"]
    assert lock.safer.startswith("add a new column")
    assert "changing-column-type" in {f.rule for f in cost.findings}


def test_a_nullable_add_and_a_concurrent_index_hold_no_lock_while_they_scan(orders_db):
    nullable_add = ("BEGIN", "ALTER TABLE orders ADD COLUMN note text", "COMMIT")
    cost = rehearsed(orders_db, *nullable_add, "CREATE INDEX CONCURRENTLY ix_amount ON orders (amount)")
    (lock,) = cost.blocking  # the add's catalog change only; the index build blocks neither reads nor writes
    assert lock.statement == "ALTER TABLE orders ADD COLUMN note text" and lock.slowest in (lock.statement, "COMMIT")
    assert cost.problem == ""
    assert "ShareUpdateExclusiveLock" in next(locks for sql, _, locks, _ in cost.statements if "CONCURRENTLY" in sql)


# --- the reference service with a migration that holds its lock too long ------------------------------------------
SLOW_MIGRATION = '''"""A release that adds a column, then runs a slow backfill under the lock the add took."""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("charts", sa.Column("notes", sa.Text))
    op.execute("SELECT pg_sleep(5.5)")  # a backfill this slow


def downgrade() -> None:
    op.drop_column("charts", "notes")
'''


@pytest.mark.slow
def test_a_migration_that_locks_a_table_longer_than_allowed_fails_the_rollback_plan(bench, healthy, scratch_source):
    (scratch_source / "migrations/versions/0003_notes.py").write_text(SLOW_MIGRATION)
    with healthy.database() as conn:
        live_before = conn.execute("SELECT * FROM alembic_version").fetchall(), migrations.relations(conn)
    checked = bench.run(
        bench.config({"target": {"source": str(scratch_source)}}, target=healthy), "-k", "rollback_plan"
    )
    assert checked.status("test_prepare_rollback_plan") == "fail"
    reason = checked.reason("test_prepare_rollback_plan")
    assert reason.startswith(
        "the migration blocks the running service: public.charts locked against reads and writes for "
    )
    assert "from ALTER TABLE charts ADD COLUMN notes TEXT, while SELECT pg_sleep(5.5) ran 5." in reason
    cost = checked.facts("test_prepare_rollback_plan", "What the migration costs (rehearsed on the scratch copy)")
    assert float(cost["predicted blocking time"].split()[0]) >= 5.5
    with healthy.database() as conn:  # the live database: untouched
        assert (conn.execute("SELECT * FROM alembic_version").fetchall(), migrations.relations(conn)) == live_before


def test_the_reference_release_shows_its_migration_cost(healthy_run):
    """1.0.0 -> 1.1.0: a constant-default column on charts and a new table with foreign keys, each statement with
    its locks and squawk's findings beside what was measured."""
    blocks = {b["title"]: b for b in healthy_run.evidence("test_prepare_rollback_plan")}
    locks = {(row[0], row[1], row[4].split(" (")[0]) for row in blocks["Locks against the running service"]["rows"]}
    assert (
        "public.charts",
        "reads and writes",
        "ALTER TABLE charts ADD COLUMN ayanamsa TEXT DEFAULT 'lahiri' NOT NULL",
    ) in locks
    assert ("public.users", "writes", "CREATE TABLE compatibility_reports") in locks  # its foreign key
    squawk = {(row[0], row[1].split(" (")[0]) for row in blocks["Squawk findings"]["rows"]}
    assert ("prefer-bigint-over-int", "CREATE TABLE compatibility_reports") in squawk
    choice = dict(blocks["Which rollback is safe (the previous release's code on the scratch copy)"]["facts"])
    assert choice["rollback"].startswith(  # the embedded default: 1.1.0 wrote charts in another ayanamsa first
        "needs the restore: the downgrade loses data written by this release (charts.ayanamsa: 20 values); code-only:"
        " the previous release fails on start-up: service not healthy within 15s (GET http"
    )
    assert healthy_run.status("test_prepare_rollback_plan") == "pass"
