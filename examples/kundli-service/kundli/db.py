"""PostgreSQL access through a psycopg 3 async connection pool. Every state change writes its audit row
in the same transaction."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def schema_head() -> str:
    """The newest alembic revision shipped with this code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


class Database:
    def __init__(self, url: str, min_size: int, max_size: int, audit: bool = True) -> None:
        self.pool = AsyncConnectionPool(url, min_size=min_size, max_size=max_size, open=False,
                                        kwargs={"row_factory": dict_row, "autocommit": False})
        self.audit_enabled = audit

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    def connections_in_use(self) -> int:
        stats = self.pool.get_stats()
        return stats.get("pool_size", 0) - stats.get("pool_available", 0)

    @asynccontextmanager
    async def transaction(self):
        async with self.pool.connection() as conn:
            async with conn.transaction():
                yield conn

    async def schema_revision(self) -> str | None:
        async with self.pool.connection(timeout=2) as conn:
            row = await (await conn.execute("SELECT version_num FROM alembic_version")).fetchone()
            return row["version_num"] if row else None

    async def audit(self, conn, actor: str, action: str, object_type: str, object_id, detail: dict | None = None):
        if not self.audit_enabled:
            return
        await conn.execute(
            "INSERT INTO audit_log (actor, action, object_type, object_id, detail) VALUES (%s, %s, %s, %s, %s)",
            (actor, action, object_type, str(object_id), json.dumps(detail or {})))

    # --- users and tokens -------------------------------------------------------------------------------------
    async def user_by_token_hash(self, token_hash: str) -> dict | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT u.id, u.username, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id "
                "WHERE t.token_hash = %s AND t.revoked_at IS NULL", (token_hash,))
            return await cur.fetchone()

    async def user_by_name(self, username: str) -> dict | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT id, username, role, password_hash FROM users WHERE username = %s",
                                     (username,))
            return await cur.fetchone()

    async def create_user(self, conn, username: str, role: str, password_hash: str | None) -> int | None:
        cur = await conn.execute(
            "INSERT INTO users (username, role, password_hash) VALUES (%s, %s, %s) "
            "ON CONFLICT (username) DO NOTHING RETURNING id", (username, role, password_hash))
        row = await cur.fetchone()
        return row["id"] if row else None

    async def add_token(self, conn, user_id: int, token_hash: str) -> None:
        await conn.execute("INSERT INTO api_tokens (user_id, token_hash) VALUES (%s, %s)", (user_id, token_hash))

    async def revoke_token(self, conn, token_hash: str) -> None:
        await conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL",
                           (token_hash,))

    # --- charts -----------------------------------------------------------------------------------------------
    async def insert_chart(self, conn, name: str, birth_at, latitude: float, longitude: float, ayanamsa: str,
                           ascendant: float, positions: list, user_id: int) -> dict:
        cur = await conn.execute(
            "INSERT INTO charts (name, birth_at, latitude, longitude, ayanamsa, ascendant, positions, created_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, created_at",
            (name, birth_at, latitude, longitude, ayanamsa, ascendant, json.dumps(positions), user_id))
        return await cur.fetchone()

    async def chart(self, chart_id: int) -> dict | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, name, birth_at, latitude, longitude, ayanamsa, ascendant, positions, created_at "
                "FROM charts WHERE id = %s", (chart_id,))
            return await cur.fetchone()

    async def update_positions(self, conn, chart_id: int, ascendant: float, positions: list) -> bool:
        cur = await conn.execute("UPDATE charts SET ascendant = %s, positions = %s WHERE id = %s",
                                 (ascendant, json.dumps(positions), chart_id))
        return cur.rowcount == 1

    async def delete_chart(self, conn, chart_id: int) -> bool:
        cur = await conn.execute("DELETE FROM charts WHERE id = %s", (chart_id,))
        return cur.rowcount == 1

    async def insert_report(self, conn, chart_a: int, chart_b: int, points: float, score: float, kootas: dict,
                            manglik_match: bool, user_id: int) -> dict:
        cur = await conn.execute(
            "INSERT INTO compatibility_reports (chart_a, chart_b, points, score, kootas, manglik_match, created_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id, created_at",
            (chart_a, chart_b, points, score, json.dumps(kootas), manglik_match, user_id))
        return await cur.fetchone()

    async def report(self, report_id: int) -> dict | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, chart_a, chart_b, points, score, kootas, manglik_match, created_at "
                "FROM compatibility_reports WHERE id = %s", (report_id,))
            return await cur.fetchone()

    async def audit_entries(self, limit: int) -> list[dict]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, at, actor, action, object_type, object_id, detail FROM audit_log "
                "ORDER BY id DESC LIMIT %s", (limit,))
            return await cur.fetchall()
