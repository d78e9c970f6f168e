"""Shared fixtures. API and database tests need KUNDLI_TEST_DATABASE_URL: a PostgreSQL database the
tests may wipe (its public schema is recreated at the start of the session)."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient

from kundli import manage
from kundli.app import create_app
from kundli.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
_names = itertools.count(1)


def alembic_config() -> Config:
    return Config(str(ROOT / "alembic.ini"))


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("KUNDLI_TEST_DATABASE_URL")
    if not url:
        pytest.skip("KUNDLI_TEST_DATABASE_URL is not set")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    os.environ["KUNDLI_DATABASE_URL"] = url
    command.upgrade(alembic_config(), "head")
    return url


@pytest.fixture
def settings(database_url) -> Settings:
    return Settings(database_url=database_url, test_mode=True, token_cache_seconds=0)


@pytest.fixture
def make_client(settings):
    clients = []

    def make(**faults) -> TestClient:
        app = create_app(Settings(**{**settings.__dict__, "faults": faults}))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


@pytest.fixture
def tokens(settings) -> dict[str, dict[str, str]]:
    """A fresh user per role: {"viewer": {"Authorization": "Bearer ..."}, ...}."""
    n = next(_names)
    return {role: {"Authorization": "Bearer " + manage.create_user(settings, f"{role}{n}-{os.getpid()}", role, None)}
            for role in ("viewer", "operator", "admin")}


def logged(caplog, text: str, timeout: float = 2.0) -> list:
    """Records containing text; the request log line is written just after the response is sent."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in caplog.records if text in r.getMessage()]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


BIRTH = {"datetime": "1990-08-15T10:00:00+05:30", "latitude": 28.61, "longitude": 77.21}


@pytest.fixture
def chart(client, tokens) -> dict:
    response = client.post("/v1/kundli", json={"name": "Test Person", "birth": BIRTH}, headers=tokens["operator"])
    assert response.status_code == 201, response.text
    return response.json()
