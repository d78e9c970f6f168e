"""The suite's own tests: each check is run for real (pytest over checks/ in a subprocess) against the
reference service, healthy and with fault switches on, and must pass or fail accordingly."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import pytest

from relcheck.core import config as config_module
from relcheck.probes.dependencies import CACHE_ENV as RESOLUTION_CACHE
from relcheck.run import runner
from relcheck.run.runner import merge
from relcheck.target.embedded import EmbeddedRuntime
from relcheck.target.target import Target

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "kundli-service"
DEFAULT_CONFIG = REPO / "relcheck.toml"

# pip's resolution of the same pins, once per test session (shared by the xdist workers and the phase runs)
os.environ.setdefault(
    RESOLUTION_CACHE,
    str(Path(tempfile.gettempdir()) / f"relcheck-resolutions-{os.environ.get('PYTEST_XDIST_TESTRUNUID', os.getpid())}"),
)

# Short load scenarios for the suite's own tests (the real ones run longer; see bench/ for the numbers). The tests
# run in parallel on a small shared machine, so thresholds are generous and the faults that must break them are
# far beyond them: a test proves a check passes and fails, not how fast this machine is.
SHORT_PERFORMANCE = {
    "load": {
        "users": 10,
        "spawn_rate": 10,
        "duration_s": 8,
        "warmup_s": 1,
        "min_requests": 50,
        "min_duration_ratio": 0.6,
    },
    # relcheck.toml's 200 req/s is the reference's requirement on its own host; a shared machine measured 112 here
    "stress": {"steps": [2, 8, 32], "step_s": 2, "required_rps": 50},
    "baseline": {"min_samples": 20, "allowed_increase": 2.0, "critical_increase": 3.0, "duration_s": 15, "looks": 2},
    "sla": {"default": ["p(95) < 1000ms", "p(99) < 2000ms"], "routes": {}},
    "smoke": {"duration_s": 3},
}
LATENCY_FAULT_MS = 1500
# The host's load average says nothing on a machine running the tests in parallel.
TEST_CHANGES = {
    "performance": SHORT_PERFORMANCE,
    "deploy": {"max_load_per_core": 1000.0},
    "post_deploy": {"smoke_allowed_increase": 3.0, "smoke_min_increase_ms": 250.0},
}


def default_config_data() -> dict:
    data = tomllib.loads(DEFAULT_CONFIG.read_text())
    return merge(data, {**TEST_CHANGES, "base_dir": str(REPO)})  # its relative paths as in the repository


class Workbench:
    """Writes configs (reports kept in its own directory) and runs the checklist against them in a subprocess."""

    def __init__(self, tmp_path: Path, env: dict) -> None:
        self.tmp = tmp_path
        self.env = env

    def config(self, changes: dict | None = None, target: Target | None = None, name: str = "relcheck.toml") -> Path:
        data = merge(default_config_data(), {"reports": str(self.tmp / "reports")})
        if target is not None:  # a deployed service; its operator says when it was deployed (started)
            data = merge(data, runner.pointing_at(target, self.env))
            data = merge(data, {"post_deploy": {"since": target.service.started().isoformat()}})
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
    shutil.copytree(
        EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".coverage", ".coverage.*")
    )
    return copy


H11_ADVISORY, H11_ALIAS = "GHSA-test-h11-all", "CVE-2099-0011"


def transitive_advisory(tmp_path: Path) -> Path:
    """The shipped advisory sample plus a record affecting every h11: the reference service installs h11 (through
    uvicorn) and pins it nowhere."""
    mirror = shutil.copytree(REPO / "examples" / "advisories", tmp_path / "advisories")
    record = {
        "schema_version": "1.6.0",
        "id": H11_ADVISORY,
        "aliases": [H11_ALIAS],
        "modified": "2026-01-01T00:00:00Z",
        "summary": "h11 request smuggling (test record)",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "h11"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    (mirror / "osv" / f"{H11_ADVISORY}.json").write_text(json.dumps(record))
    return mirror


def shared_dir(tmp_path_factory) -> Path:
    """A directory all xdist workers of this session share."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


NEEDS_HEALTHY_RUN = pytest.StashKey[bool]()


@pytest.fixture(scope="session", autouse=True)
def healthy_run_started(request, tmp_path_factory):
    """Start the one healthy run in the background as soon as the first worker starts, so that it overlaps the
    other tests; whichever worker starts it waits for it before finishing."""
    if not request.config.stash.get(NEEDS_HEALTHY_RUN, False):
        yield
        return
    root = shared_dir(tmp_path_factory) / "healthy"
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = (root / "started").exists()
        (root / "started").touch()
    if started:
        yield
        return

    def run() -> None:
        bench = Workbench(root, {})
        outcome = bench.run(bench.config())
        payload = {**outcome.__dict__, "run_dir": str(outcome.run_dir) if outcome.run_dir else None}
        (root / "outcome.partial").write_text(json.dumps(payload))
        (root / "outcome.partial").rename(root / "outcome.json")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    thread.join()


@pytest.fixture(scope="session")
def healthy_run(healthy_run_started, tmp_path_factory) -> runner.Outcome:
    """Every check of every phase, once per test session (shared by the xdist workers), against the healthy
    reference service on the embedded default with short load scenarios: the README's main job."""
    result = shared_dir(tmp_path_factory) / "healthy" / "outcome.json"
    deadline = time.monotonic() + 1200
    while not result.exists():
        assert time.monotonic() < deadline, "the healthy run did not finish within 20 minutes"
        time.sleep(0.5)
    data = json.loads(result.read_text())
    outcome = runner.Outcome(**{**data, "run_dir": Path(data["run_dir"]) if data["run_dir"] else None})
    assert outcome.manifest, outcome.output[-3000:]
    return outcome


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Tests reading the healthy run go last: it runs in the background meanwhile (after -k/-m deselection)."""
    needs = [item for item in items if "healthy_run" in getattr(item, "fixturenames", ())]
    config.stash[NEEDS_HEALTHY_RUN] = bool(needs)
    items[:] = [item for item in items if item not in needs] + needs


ROLES = {"QA Team Lead": "priya.menon@kundli.example", "Release Manager": "meera.nair@kundli.example"}


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return path


@pytest.fixture
def keys(tmp_path):
    """A key per role, one stranger's key, and the allowed signers file naming the role holders."""
    made = {role: keygen(tmp_path / f"key-{n}") for n, role in enumerate(ROLES)}
    made["stranger"] = keygen(tmp_path / "key-stranger")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(
        "".join(f"{ROLES[role]} {' '.join(Path(f'{made[role]}.pub').read_text().split()[:2])}\n" for role in ROLES)
    )
    return made, allowed


def installed(found: str | None, package: str, required_by: str) -> str:
    """A tool a test needs: its path; when missing, the test fails where CI requires it ($required_by=1), else skips."""
    if found:
        return found
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{package} is required ({required_by}=1) but not installed")
    pytest.skip(f"{package} is not installed (.ci/run and the README's test command install it)")


def relcheck_cli(config: Path | None, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "relcheck.cli", *(["--config", str(config)] if config else []), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def wheel_relcheck(tmp_path_factory) -> Path:
    """The `relcheck` command of relcheck's wheel (not this editable checkout) in a fresh virtualenv: built from a
    copy of the checkout, installed without dependencies, which it takes from this environment (no download)."""
    home = tmp_path_factory.mktemp("wheel")
    wheels, source, venv = home / "wheels", home / "relcheck-source", home / "venv"
    skipped = shutil.ignore_patterns(
        ".git", ".venv", ".kinto-venv", ".wagtail-venv", ".flask-venv", "build", "reports", "__pycache__", "*.egg-info"
    )
    shutil.copytree(REPO, source, ignore=skipped)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run([*build, str(source)], check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    site = Path(subprocess.check_output(purelib, text=True).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (wheel,) = wheels.glob("relcheck-*.whl")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    where = subprocess.check_output([python, "-c", "import relcheck; print(relcheck.__file__)"], cwd=home, text=True)
    assert where.startswith(str(site)), where
    return venv / "bin" / "relcheck"


def run_phase(relcheck: Path, work: Path, phase: str, env: dict, *pytest_args: str) -> tuple[str, dict]:
    """`relcheck run PHASE` in work (its ./relcheck.toml); the output and the run's manifest ({} if none)."""
    done = subprocess.run(
        [str(relcheck), "run", phase, "--", "-p", "no:randomly", *pytest_args],
        cwd=work, capture_output=True, text=True, timeout=900, env={**os.environ, **env},
    )  # fmt: skip
    manifests = sorted(work.glob(f"reports/*/{phase}*/manifest.json"), key=lambda p: p.stat().st_mtime)
    return done.stdout + done.stderr, json.loads(manifests[-1].read_text()) if manifests else {}


# The trigger decisions of a healthy service whose triggers cannot all be evaluated: never ROLLBACK
HEALTHY_DECISIONS = {"pre_release": "", "pre_deploy": "", "post_deploy": "BLOCKED", "monitoring": "BLOCKED"}


def phase_as_expected(
    relcheck: Path, work: Path, phase: str, env: dict, expected: dict, decision: str, timing: dict | None = None
) -> dict:
    """`relcheck run PHASE`: no traceback, every check's status the expected one ({status: {test, ...}}; a check not
    named is not verified; timing: {test: {statuses}} where a shared machine's timing may decide), each expected check
    run, the trigger decision the expected one (never ROLLBACK on a healthy service); its manifest."""
    started = time.monotonic()
    output, manifest = run_phase(relcheck, work, phase, env)
    assert "Traceback" not in output and manifest, output[-3000:]
    statuses = statuses_of(manifest)
    wanted = {test: status for status, tests in expected.items() for test in tests}
    wrong = {
        test: f"{status} ({reason}), expected {wanted.get(test, 'not verified')}"
        for test, (status, reason) in statuses.items()
        if status not in (timing or {}).get(test, {wanted.get(test, "not verified")})
    }
    assert not wrong, f"{phase}: " + json.dumps(wrong, indent=1)
    assert set(wanted) <= set(statuses), f"{phase}: not run: {set(wanted) - set(statuses)}"
    assert (manifest.get("decision") or {}).get("name", "") == decision
    print(f"{phase}: {time.monotonic() - started:.1f} s")
    return manifest


def statuses_of(manifest: dict) -> dict[str, tuple[str, str]]:
    return {c["test"].split("::")[-1]: (c["status"], c["reason"]) for i in manifest["items"] for c in i["checks"]}


def false_alarms(checked: runner.Outcome) -> list[str]:
    """What a healthy service must never get: a FAIL, a ROLLBACK, a not verified without its reason."""
    found = [f"{test} FAIL: {reason}" for test, (status, reason) in checked.statuses().items() if status == "fail"]
    found += [
        f"{test} not verified without a reason"
        for test, (s, r) in checked.statuses().items()
        if s == "not verified" and not r
    ]
    if checked.verdict == "ROLLBACK" or checked.returncode == 3:
        found.append(f"ROLLBACK: {checked.manifest.get('verdict_reasons')}")
    return found


@contextlib.contextmanager
def background_traffic(targets, lead_s: float, clients: int = 3, pause_s: float = 0.0):
    """Real traffic (not relcheck's): requests to every target from `clients` threads each, for lead_s before the block
    and until its end — a monitoring window read in the block sees it, however long the run takes to start."""
    stop = threading.Event()

    def client(target) -> None:
        while not stop.is_set():
            target.http.get("/v1/kundli/1", role="viewer")
            stop.wait(pause_s)

    threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in targets for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        stop.wait(lead_s)  # the window fills with traffic before the run reads it
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()
