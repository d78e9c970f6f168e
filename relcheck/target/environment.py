"""Environments for the commands relcheck runs in the target's tree (its tests, migrations, rehearsals, deploy
steps): built from the config only. They get PATH, HOME, the locale and the variables the config names, never the
caller's whole environment, where a POSTGRES_* or DATABASE_URL left over from a shell would point a test suite at the
live database.

    env = command_env({"DATABASE_URL": scratch.dsn})
    refuse_live(env, command, DsnParts.of(target.dsn), "quality.tests")     # before anything runs
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import psycopg

from relcheck.target import postgres
from relcheck.target.scratch import DsnParts, ScratchRefused

INHERITED = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR")
NOT_A_DATABASE = re.compile(r"USER|ROLE|OWNER|PASS|SECRET|TOKEN", re.IGNORECASE)  # a role may be named as its database


def command_env(configured: dict[str, str]) -> dict[str, str]:
    """PATH, HOME, the locale (LANG, LC_*), TZ and TMPDIR from relcheck's environment, then the configured ones."""
    inherited = {k: v for k, v in os.environ.items() if k in INHERITED or k.startswith("LC_")}
    return {**inherited, **configured}


def named_database(value: str) -> str:
    """The database a DSN-looking value names ("" for anything else)."""
    try:
        if "://" in value and urlsplit(value).scheme.startswith("postgres"):
            return urlsplit(value).path.lstrip("/")
        if "dbname=" in value:
            return postgres.database_name(value)
    except (ValueError, psycopg.Error):  # not a DSN after all
        return ""
    return ""


def refuse_live(env: dict[str, str], command: list[str], live: DsnParts, where: str) -> None:
    """A step meant for a scratch copy must not point at the live database (its DSN, a DSN naming it, or its name as
    the value of a variable that names a database — not a role or password that happens to be spelled the same):
    ScratchRefused naming the variable, before the step runs."""
    if not live.db:
        return
    named = [(f"{where}.env.{k}", v, not NOT_A_DATABASE.search(k)) for k, v in env.items()] + [
        (f"{where} command argument {n}", a, False) for n, a in enumerate(command, 1)
    ]
    for name, value, plain_name_counts in named:
        if (
            (live.dsn and live.dsn in value)
            or named_database(value) == live.db
            or (plain_name_counts and value == live.db)
        ):
            raise ScratchRefused(
                f"{name} names the live database {live.db}: refusing to run a step meant for a scratch copy"
            )
