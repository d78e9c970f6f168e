"""relcheck as a tool: the wheel (not an editable checkout) installed into a fresh virtualenv writes a config with
`relcheck init` for the running reference service and runs every phase from a directory of the user's, with its
reports in ./reports/: no traceback, a manifest each, never ROLLBACK on the healthy service."""

from __future__ import annotations

import subprocess

import pytest

from conftest import run_phase, statuses_of

PHASES = ("pre_release", "pre_deploy", "post_deploy", "post_rollback", "monitoring", "signoff", "post_release")


@pytest.mark.slow
def test_the_wheel_installed_elsewhere_runs_init_and_every_phase(wheel_relcheck, healthy, tmp_path):
    work = tmp_path / "my-service-ops"
    work.mkdir()
    init = subprocess.run(
        [str(wheel_relcheck), "init", "--base-url", healthy.base_url, "--dsn", healthy.dsn],
        cwd=work, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert init.returncode == 0 and (work / "relcheck.toml").is_file(), init.stderr
    env = {"RELCHECK_TARGET_DSN": healthy.dsn}
    for phase in PHASES:
        output, manifest = run_phase(wheel_relcheck, work, phase, env)
        assert "Traceback" not in output and manifest, (phase, output[-3000:])
        assert (manifest.get("decision") or {}).get("name") != "ROLLBACK", (phase, manifest.get("verdict_reasons"))
        if phase == "post_deploy":
            statuses = statuses_of(manifest)
            assert statuses["test_service_is_running[post_deploy]"][0] == "pass"
            assert statuses["test_health_checks[post_deploy]"][0] == "pass"  # its database answers too
