import subprocess
import sys

import psycopg
import pytest
from alembic import command

from conftest import ROOT, alembic_config
from kundli import manage
from kundli.auth import hash_password, verify_password
from kundli.cache import LRUCache
from kundli.db import schema_head


def test_password_hashing():
    stored = hash_password("correct horse battery")
    assert stored.startswith("pbkdf2_sha256$") and "correct" not in stored
    assert verify_password("correct horse battery", stored)
    assert not verify_password("wrong", stored)
    assert not verify_password("x", None) and not verify_password("x", "garbage")
    assert not verify_password("x", "md5$1$a$b")


def test_lru_cache_evicts_oldest():
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1
    LRUCache(0).put("x", 1)


def test_manage_cli(settings, monkeypatch, capsys):
    monkeypatch.setenv("KUNDLI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ANALYST_PASSWORD", "a long enough password")
    assert manage.main(["create-user", "--username", "cli-user", "--role", "viewer",
                        "--password-env", "ANALYST_PASSWORD"]) == 0
    assert capsys.readouterr().out.startswith("kst_")
    with pytest.raises(SystemExit, match="USERNAME_TAKEN"):
        manage.main(["create-user", "--username", "cli-user", "--role", "viewer"])
    assert manage.main(["issue-token", "--username", "cli-user"]) == 0
    with pytest.raises(SystemExit, match="no user"):
        manage.main(["issue-token", "--username", "ghost"])
    assert manage.main(["schema"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"head={schema_head()}")
    monkeypatch.delenv("KUNDLI_DATABASE_URL")
    assert manage.main(["schema"]) == 2


def test_migrations_downgrade_and_upgrade_cleanly(database_url):
    config = alembic_config()
    command.downgrade(config, "base")
    with psycopg.connect(database_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables <= {"alembic_version"}
    command.upgrade(config, "head")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == schema_head()


def test_broken_downgrade_fault_fails_the_down_migration(database_url, monkeypatch):
    monkeypatch.setenv("KUNDLI_TEST_MODE", "1")
    monkeypatch.setenv("KUNDLI_FAULTS", '{"broken_downgrade": true}')
    with pytest.raises(Exception, match="compatibility_reports_does_not_exist"):
        command.downgrade(alembic_config(), "-1")
    monkeypatch.delenv("KUNDLI_FAULTS")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == schema_head()


def test_service_starts_as_a_process(database_url, tmp_path):
    env = {"KUNDLI_DATABASE_URL": database_url, "KUNDLI_LOG_FILE": str(tmp_path / "x.log"), "PATH": ""}
    result = subprocess.run([sys.executable, "-m", "kundli", "--port", "0", "--help"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "--port" in result.stdout
