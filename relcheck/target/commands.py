"""One way to run a command, here or through a command prefix (["ssh", "ops@app1"]), with one environment policy:

- no `env`: one of relcheck's own tools (git, pip, bandit, journalctl) — it inherits relcheck's environment
  (`tool_env` adds variables to it);
- `env={...}`: a command of the target's (its tests, migrations, deploy steps) — it gets only PATH, HOME, the locale
  and the configured variables here (`environment.command_env`), and through a prefix the variables travel on stdin,
  never on a command line (`remote.through`).

A command that could not start or did not finish is a result too (`returncode` None, `problem` says why), so each
caller decides what that means for its check; `raise_for` turns a failure into the caller's one-line error.

    result = commands.run(["git", "rev-parse", "HEAD"], cwd=repo, timeout=10)
    sha = result.stdout.strip() if result.ok else ""
    commands.run(["alembic", "upgrade", "head"], env={"DATABASE_URL": dsn}, cwd=tree, timeout=300).raise_for("migrate")
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from relcheck.core.errors import ToolError
from relcheck.core.secrets import redact
from relcheck.target import remote
from relcheck.target.environment import command_env


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int | None  # None: it could not start or did not finish (see problem)
    stdout: str = ""
    stderr: str = ""
    problem: str = ""  # "command not found: X", "did not finish within 30s", "could not start: …"

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def last_line(self) -> str:
        """The line that says why (see telling_line), secrets masked; 'no output' when silent."""
        return telling_line(self.stderr or self.stdout)

    def failure(self, what: str) -> str:
        """Why it did not succeed, in one line naming `what` ("" when it did)."""
        if self.problem:
            return f"{what}: {self.problem}"
        return "" if self.ok else f"{what} failed (exit {self.returncode}): {self.last_line}"

    def raise_for(self, what: str, error: type[Exception] = ToolError) -> CommandResult:
        """This result when it succeeded, else `error` with the one-line failure."""
        if not self.ok:
            raise error(self.failure(what))
        return self


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Warning)\b.*:")


def telling_line(output: str) -> str:
    """Why a command failed, in one line (secrets masked): the last line naming an exception when a traceback or a
    library's closing note follows it (SQLAlchemy ends with "(Background on this error at: ...)"), else the last
    non-empty line; 'no output' when silent."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    named = [line for line in lines if EXCEPTION_LINE.match(line)]
    return redact((named or lines)[-1]) if lines else "no output"


def run(
    words: list[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    prefix: list[str] | None = None,
    input: str | None = None,
    tool_env: dict[str, str] | None = None,
) -> CommandResult:
    """Run words (here, or on the host `prefix` reaches) within `timeout` seconds; never raises for the command."""
    if prefix:
        argv, stdin = remote.through(prefix, words, env, cwd)
        local_env, local_cwd = None, None
        if input is not None and stdin is not None:  # the remote shell reads the environment from stdin to its end
            raise ValueError("a command through a prefix takes an environment or an input, not both")
        stdin = input if stdin is None else stdin
    else:
        argv, stdin, local_cwd = words, input, cwd
        local_env = command_env(env) if env is not None else {**os.environ, **tool_env} if tool_env else None
    try:
        done = subprocess.run(
            argv, cwd=local_cwd, env=local_env, input=stdin, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        return CommandResult(argv, None, problem=f"command not found: {argv[0]}")
    except subprocess.TimeoutExpired:
        return CommandResult(argv, None, problem=f"did not finish within {timeout:g}s")
    except OSError as exc:
        return CommandResult(argv, None, problem=f"could not start {argv[0]}: {exc}")
    return CommandResult(argv, done.returncode, done.stdout, done.stderr)
