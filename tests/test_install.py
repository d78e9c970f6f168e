"""relcheck as a tool: the wheel (not an editable checkout) installed into a fresh virtualenv writes a config with
`relcheck init` and runs a phase from a directory of the user's, with its reports in ./reports/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_installed_elsewhere_runs_init_and_a_phase(healthy, tmp_path):
    wheels, source = tmp_path / "wheels", tmp_path / "relcheck-source"  # built from a copy: no build/ in the checkout
    skipped = shutil.ignore_patterns(".git", ".venv", ".kinto-venv", "build", "reports", "__pycache__", "*.egg-info")
    shutil.copytree(REPO, source, ignore=skipped)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run([*build, str(source)], check=True, capture_output=True, timeout=300)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        text=True).strip())  # fmt: skip
    # relcheck's dependencies from this environment (no download), relcheck itself only from the wheel
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (wheel,) = wheels.glob("relcheck-*.whl")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    work = tmp_path / "my-service-ops"
    work.mkdir()
    where = subprocess.check_output([python, "-c", "import relcheck; print(relcheck.__file__)"], cwd=work, text=True)
    assert where.startswith(str(site)), where
    relcheck = [str(venv / "bin" / "relcheck")]
    init = subprocess.run([*relcheck, "init", "--base-url", healthy.base_url], cwd=work, capture_output=True, text=True)
    assert init.returncode == 0 and (work / "relcheck.toml").is_file(), init.stderr
    run = subprocess.run(
        [*relcheck, "run", "post_deploy", "--", "-p", "no:randomly", "-k", "service_is_running or health_checks"],
        cwd=work, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "Traceback" not in run.stdout + run.stderr, run.stdout[-3000:]
    assert list((work / "reports").glob("*/post_deploy*/manifest.json")), run.stdout[-3000:] + run.stderr[-2000:]
    (manifest,) = (work / "reports").glob("*/post_deploy*/manifest.json")
    statuses = {
        c["test"].split("::")[-1]: c["status"] for i in json.loads(manifest.read_text())["items"] for c in i["checks"]
    }
    assert statuses["test_service_is_running[post_deploy]"] == "pass"
    assert statuses["test_health_checks[post_deploy]"] == "not verified"  # init was given no database
