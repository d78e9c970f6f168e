"""python -m bench.migration_capture [ROWS]: the rehearsal's overhead over a plain `alembic upgrade` on a copy.

The reference service's 1.0.0 -> 1.1.0 upgrade (0001 -> 0002) on a database with ROWS charts (default 100000), run
alternately plain and as *Prepare rollback plan* rehearses it (through the statement capture, the relations read
before and after), five times each; prints the medians and their ratio."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import psycopg

from relcheck.probes import migrations
from relcheck.target import capture, postgres

SERVICE = Path(__file__).resolve().parent.parent / "examples" / "kundli-service"
CHARTS = """INSERT INTO charts (name, birth_at, latitude, longitude, ascendant, positions, created_by)
SELECT 'c' || g, now(), 12.9, 77.6, 0, '{}'::jsonb, 1 FROM generate_series(1, %s) g"""


def alembic(dsn: str, *args: str) -> None:
    env = {**os.environ, "KUNDLI_DATABASE_URL": dsn}
    subprocess.run([sys.executable, "-m", "alembic", *args], cwd=SERVICE, env=env, check=True, capture_output=True)


def plain(dsn: str) -> float:
    started = time.monotonic()
    alembic(dsn, "upgrade", "0002")
    return time.monotonic() - started


def rehearsed(dsn: str) -> float:
    started = time.monotonic()
    with psycopg.connect(dsn) as conn:
        migrations.relations(conn)
    with capture.proxy(dsn) as (through, _):
        alembic(through, "upgrade", "0002")
    with psycopg.connect(dsn) as conn:
        migrations.relations(conn)
    return time.monotonic() - started


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    pg = postgres.EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="relcheck-bench-"))).start()
    try:
        dsn = pg.create_app_database("bench", "app", "bench")
        alembic(dsn, "upgrade", "0001")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO users (id, username, role) VALUES (1, 'bench', 'admin')")
            conn.execute(CHARTS % rows)
        times: dict[str, list[float]] = {"plain": [], "rehearsed": []}
        for _ in range(5):
            for name, run in (("plain", plain), ("rehearsed", rehearsed)):
                times[name].append(run(dsn))
                alembic(dsn, "downgrade", "0001")
        a, b = median(times["plain"]), median(times["rehearsed"])
        print(
            f"charts: {rows} rows; plain alembic upgrade: {a:.3f} s; rehearsed: {b:.3f} s; "
            f"overhead {b - a:+.3f} s (x{b / a:.2f})"
        )
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
