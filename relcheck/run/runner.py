"""Run phases of the checklist in a fresh pytest process against a config (written from data when needed):
used by the rehearsal, and by the suite's own tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from relcheck.core.statuses import Verdict
from relcheck.run.phases import run_label
from relcheck.target.target import Target


@dataclass
class Outcome:
    returncode: int
    output: str
    manifest: dict
    seconds: float
    run_dir: Path | None

    @property
    def verdict(self) -> Verdict | None:
        """None when the run wrote no manifest (refused or crashed before it could)."""
        name = self.manifest.get("verdict")
        return Verdict(name) if name in set(Verdict) else None

    def statuses(self) -> dict[str, tuple[str, str]]:
        """test name (with parameters) -> (status, reason)."""
        return {
            c["test"].split("::")[-1]: (c["status"], c["reason"])
            for item in self.manifest.get("items", [])
            for c in item["checks"]
        }

    def status(self, test_name: str) -> str:
        return self.statuses()[test_name][0]

    def reason(self, test_name: str) -> str:
        return self.statuses()[test_name][1]

    def evidence(self, test_name: str) -> list[dict]:
        """The evidence blocks a check recorded."""
        if self.run_dir is None:
            raise ValueError("this run wrote no evidence")
        evidence = json.loads((self.run_dir / "evidence.json").read_text())
        return next(blocks for nodeid, blocks in evidence.items() if nodeid.split("::")[-1] == test_name)

    def facts(self, test_name: str, title: str) -> dict:
        return dict(next(b for b in self.evidence(test_name) if b["title"] == title)["facts"])


def read_config(path: Path) -> dict:
    return tomllib.loads(Path(path).read_text())


def write_config(data: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(data))
    return path


def merge(base: dict, changes: dict) -> dict:
    """base with changes applied, recursively for tables."""
    merged = dict(base)
    for key, value in changes.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge(merged[key], value) if nested else value
    return merged


def pointing_at(target: Target, env: dict) -> dict:
    """Config changes that point relcheck at an already running target, as at a real deployment; the secrets go
    into env (the config names them "env:...")."""
    env["RELCHECK_TARGET_DSN"] = target.dsn
    env["RELCHECK_TARGET_ADMIN_DSN"] = target.admin_dsn
    tokens = {}
    for role, token in target.http.tokens.items():
        env[f"RELCHECK_TARGET_TOKEN_{role.upper()}"] = token
        tokens[role] = f"env:RELCHECK_TARGET_TOKEN_{role.upper()}"
    return {
        "target": {
            "mode": "remote",
            "base_url": target.base_url,
            "dsn": "env:RELCHECK_TARGET_DSN",
            "admin_dsn": "env:RELCHECK_TARGET_ADMIN_DSN",
            # it runs on this machine: its host's memory and load are measured here (command prefix "sh -c")
            "service": {"manager": "none", "log_file": str(target.log_file), "command_prefix": ["sh", "-c"]},
            "auth": {"tokens": tokens},
        },
        "performance": {"baseline": {"mode": "history"}},
    }


def checklist_args(config: Path | str | None, markexpr: str = "") -> list[str]:
    """pytest's arguments for the checklist (the checks shipped in relcheck's package) with this config."""
    from relcheck.run.plugin import CHECKS_DIR

    selection = ["-m", markexpr] if markexpr else []
    chosen = ["--relcheck-config", str(Path(config).resolve())] if config else []
    # Schemathesis runs as a CLI; its pytest plugin would only add seconds of imports to every run
    return [str(CHECKS_DIR), "-p", "no:cacheprovider", "-p", "no:schemathesis", *chosen, *selection]


def checks_command(config: Path, markexpr: str = "", args: list[str] | tuple[str, ...] = ()) -> list[str]:
    """pytest over the checklist with this config, as a command line."""
    return [sys.executable, "-m", "pytest", *checklist_args(config, markexpr), "-q", *args]


def run_checks(
    config: Path,
    markexpr: str = "",
    args: list[str] | tuple[str, ...] = (),
    env: dict | None = None,
    timeout: float = 1800,
) -> Outcome:
    """pytest over checks/ with this config; the manifest is read from the run's directory if this run wrote it."""
    from relcheck.core.config import Release

    data = read_config(config)  # only where the run writes; secrets stay unresolved here
    reports = Path(data.get("reports", "reports"))
    base = Path(data["base_dir"]) if data.get("base_dir") else Path(config).resolve().parent
    reports = reports if reports.is_absolute() else base / reports
    run_dir = reports / Release(**data["release"]).release_id / run_label(markexpr)
    command = checks_command(config, markexpr, args)
    started, wall = time.monotonic(), time.time()
    with subprocess.Popen(
        command,
        cwd=Path(config).resolve().parent,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as child:
        try:
            output, _ = child.communicate(timeout=timeout)
        except KeyboardInterrupt:  # Ctrl-C: the run stops as an interrupted one, its report written
            child.send_signal(signal.SIGINT)
            child.communicate(timeout=120)
            raise
        except subprocess.TimeoutExpired:
            child.kill()
            raise
    result = subprocess.CompletedProcess(command, child.returncode, output, "")
    fresh = [  # the phase's directory, or beside it for a partial run: whichever this run wrote
        d
        for d in (run_dir, run_dir.with_name(run_dir.name + "-partial"))
        if (d / "manifest.json").is_file() and (d / "manifest.json").stat().st_mtime >= wall - 1
    ]
    written = sorted(fresh, key=lambda d: (d / "manifest.json").stat().st_mtime, reverse=True)
    return Outcome(
        result.returncode,
        result.stdout + result.stderr,
        json.loads((written[0] / "manifest.json").read_text()) if written else {},
        time.monotonic() - started,
        written[0] if written else None,
    )
