"""A pytest plugin for the outcome rule's own test: every fixture of relcheck.fixtures raises the error named by
RELCHECK_INJECT instead of gathering anything (as if the login were refused, the tool missing, the worker dead)."""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest

from relcheck.core.errors import TargetError, ToolError

ERRORS = {
    "login refused": lambda: TargetError("target database: authentication failed (injected)"),
    "tool missing": lambda: ToolError("bandit not found (injected)"),
    "psycopg error": lambda: psycopg.OperationalError("server closed the connection unexpectedly (injected)"),
    "dead worker": lambda: BrokenPipeError(32, "Broken pipe (injected)"),
    "timeout": lambda: subprocess.TimeoutExpired(["locust"], 60),
    "unreadable file": lambda: PermissionError(13, "Permission denied (injected)", "/var/log/service.log"),
    "bug in a probe": lambda: KeyError("p95 (injected)"),
}


def failing(**_):
    raise ERRORS[os.environ["RELCHECK_INJECT"]]()


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef, request):
    """The fixture's own function is swapped for one that raises; pytest then caches and reports it as usual."""
    if fixturedef.func.__module__.startswith("relcheck.fixtures."):
        fixturedef.func = failing
