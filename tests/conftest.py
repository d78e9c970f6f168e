"""The suite's own tests: each check is run for real (pytest over checks/ in a subprocess) against the
reference service, healthy and with fault switches on, and must pass or fail accordingly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w

from relcheck import config as config_module
from relcheck.target import EmbeddedRuntime, Target

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "kundli-service"
DEFAULT_CONFIG = REPO / "relcheck.toml"


# Short load scenarios for the suite's own tests (the real ones run longer; see bench/ for the numbers).
SHORT_PERFORMANCE = {"load": {"users": 10, "spawn_rate": 10, "duration_s": 8, "warmup_s": 1, "min_requests": 50},
                     "stress": {"steps": [2, 8, 32], "step_s": 2}, "baseline": {"min_samples": 20}}


def default_config_data() -> dict:
    data = tomllib.loads(DEFAULT_CONFIG.read_text())
    data = merge(data, {"performance": SHORT_PERFORMANCE})
    data["target"]["source"] = str(EXAMPLE)
    data["target"]["repository"] = str(REPO / data["target"]["repository"])
    data["security"]["dependencies"]["advisories"] = [str(REPO / d) for d in data["security"]["dependencies"]["advisories"]]
    for scenario in ("load", "smoke", "stress", "soak"):
        if scenario in data.get("performance", {}):
            data["performance"][scenario]["locustfile"] = str(REPO / data["performance"][scenario]["locustfile"])
    return data


def merge(base: dict, changes: dict) -> dict:
    """base with changes applied, recursively for tables."""
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = merge(merged.get(key, {}), value) if isinstance(value, dict) and key in merged else value
    return merged


@dataclass
class Checked:
    """Outcome of one run of the checklist: exit status, output, and each check's (status, reason)."""
    returncode: int
    output: str
    manifest: dict
    seconds: float
    reports: Path

    def evidence(self, test_name: str) -> list[dict]:
        """The evidence blocks a check recorded."""
        evidence = json.loads((self.reports / "evidence.json").read_text())
        return next(blocks for nodeid, blocks in evidence.items() if nodeid.endswith("::" + test_name))

    def facts(self, test_name: str, title: str) -> dict:
        block = next(b for b in self.evidence(test_name) if b["title"] == title)
        return dict(block["facts"])

    def checks(self) -> dict[str, tuple[str, str]]:
        return {c["test"].split("::")[-1]: (c["status"], c["reason"])
                for item in self.manifest.get("items", []) for c in item["checks"]}

    def status(self, test_name: str) -> str:
        return self.checks()[test_name][0]

    def reason(self, test_name: str) -> str:
        return self.checks()[test_name][1]


class Workbench:
    """Writes configs and runs the checklist against them in a subprocess."""

    def __init__(self, tmp_path: Path, env: dict) -> None:
        self.tmp = tmp_path
        self.env = env

    def config(self, changes: dict | None = None, target: Target | None = None, name: str = "relcheck.toml") -> Path:
        data = default_config_data()
        if target is not None:
            data = merge(data, remote(target, self.env))
            data["performance"]["baseline"]["mode"] = "history"      # a remote target has no previous release beside it
        data = merge(data, changes or {})
        path = self.tmp / name
        path.write_text(tomli_w.dumps(data))
        return path

    def run(self, config: Path, *args: str, timeout: float = 600) -> Checked:
        reports = self.tmp / f"reports-{time.monotonic_ns()}"
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "checks"), "--relcheck-config", str(config),
                                 "--relcheck-reports", str(reports), "-p", "no:randomly", *args],
                                cwd=REPO, env={**os.environ, **self.env}, capture_output=True, text=True,
                                timeout=timeout)
        manifest_path = reports / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        return Checked(result.returncode, result.stdout + result.stderr, manifest, time.monotonic() - started, reports)


def remote(target: Target, env: dict) -> dict:
    """Config changes that point relcheck at an already running target, as it would a real deployment."""
    env["RELCHECK_TEST_DSN"] = target.dsn
    env["RELCHECK_TEST_ADMIN_DSN"] = target.admin_dsn
    tokens = {}
    for role, token in target.http.tokens.items():
        env[f"RELCHECK_TEST_TOKEN_{role.upper()}"] = token
        tokens[role] = f"env:RELCHECK_TEST_TOKEN_{role.upper()}"
    return {"target": {"mode": "remote", "base_url": target.base_url, "dsn": "env:RELCHECK_TEST_DSN",
                       "admin_dsn": "env:RELCHECK_TEST_ADMIN_DSN",
                       "service": {"manager": "none", "log_file": str(target.log_file)},
                       "auth": {"tokens": tokens}}}


@pytest.fixture(scope="session")
def default_config() -> config_module.Config:
    return config_module.load(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def runtime(default_config):
    """One embedded PostgreSQL + schema + tokens for the whole session; services are spawned on it."""
    rt = EmbeddedRuntime(default_config, faults={})
    rt.main = rt.start()
    yield rt
    rt.stop()


@pytest.fixture(scope="session")
def healthy(runtime) -> Target:
    return runtime.main


@pytest.fixture(scope="session")
def faulty(runtime):
    """faulty(unhealthy=True) -> a service instance with those fault switches on (one per fault set)."""
    spawned: dict[str, Target] = {}

    def get(healthy: bool = True, **faults) -> Target:
        key = json.dumps(faults, sort_keys=True)
        if key not in spawned:
            spawned[key] = runtime.spawn(faults, healthy=healthy)
        return spawned[key]
    return get


@pytest.fixture
def bench(tmp_path) -> Workbench:
    return Workbench(tmp_path, {})


@pytest.fixture
def scratch_source(tmp_path) -> Path:
    """A scratch copy of the reference service's tree, to break on purpose."""
    copy = tmp_path / "kundli-service"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".coverage*"))
    return copy


@pytest.fixture(scope="session")
def healthy_run(tmp_path_factory) -> Checked:
    """Every check of every phase, once, against the healthy reference service on the embedded default (short
    load scenarios): the README's main job."""
    bench = Workbench(tmp_path_factory.mktemp("healthy"), {})
    checked = bench.run(bench.config())
    assert checked.manifest, checked.output[-3000:]
    return checked
