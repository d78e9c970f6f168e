"""The suite's own tests: each check is run for real (pytest over checks/ in a subprocess) against the
reference service, healthy and with fault switches on, and must pass or fail accordingly."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from relcheck import config as config_module
from relcheck import runner
from relcheck.runner import merge
from relcheck.target import EmbeddedRuntime, Target

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "kundli-service"
DEFAULT_CONFIG = REPO / "relcheck.toml"


# Short load scenarios for the suite's own tests (the real ones run longer; see bench/ for the numbers).
SHORT_PERFORMANCE = {"load": {"users": 10, "spawn_rate": 10, "duration_s": 8, "warmup_s": 1, "min_requests": 50},
                     "stress": {"steps": [2, 8, 32], "step_s": 2}, "baseline": {"min_samples": 20},
                     "smoke": {"duration_s": 3}}


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


class Workbench:
    """Writes configs (reports kept in its own directory) and runs the checklist against them in a subprocess."""

    def __init__(self, tmp_path: Path, env: dict) -> None:
        self.tmp = tmp_path
        self.env = env

    def config(self, changes: dict | None = None, target: Target | None = None, name: str = "relcheck.toml") -> Path:
        data = merge(default_config_data(), {"reports": str(self.tmp / "reports")})
        if target is not None:
            data = merge(data, runner.pointing_at(target, self.env))
        return runner.write_config(merge(data, changes or {}), self.tmp / name)

    def run(self, config: Path, *args: str, timeout: float = 600) -> runner.Outcome:
        args = list(args)
        markexpr = ""
        if "-m" in args:
            markexpr = args.pop(args.index("-m") + 1)
            args.remove("-m")
        return runner.run_checks(config, markexpr, ["-p", "no:randomly", *args], self.env, timeout)


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
def healthy_run(tmp_path_factory) -> runner.Outcome:
    """Every check of every phase, once, against the healthy reference service on the embedded default (short
    load scenarios): the README's main job."""
    bench = Workbench(tmp_path_factory.mktemp("healthy"), {})
    checked = bench.run(bench.config())
    assert checked.manifest, checked.output[-3000:]
    return checked
