"""The signed checklist: sign-offs by role, verification against tampering, attestations, signed waivers, and
the report in a real browser."""

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from fakes import HostileTarget

from conftest import ROLES, installed, relcheck_cli
from relcheck.core import config as config_module
from relcheck.run import signoff


@pytest.fixture
def signed_run(bench, keys, healthy, monkeypatch):
    """A real run (the documentation checks, against the shared healthy service) as the report the roles sign."""
    made, allowed = keys
    config = bench.config({"signoff": {"allowed_signers": str(allowed), "report": "documentation"}}, target=healthy)
    for name, value in bench.env.items():  # the run's secrets, for the CLI and in-process loads of its config
        monkeypatch.setenv(name, value)
    checked = bench.run(config, "-m", "documentation")
    assert checked.run_dir and (checked.run_dir / "report.html").is_file()
    return config, checked.run_dir, made


def test_two_roles_sign_and_verify_lists_them(bench, signed_run):
    config, run_dir, made = signed_run
    for role in ROLES:
        result = relcheck_cli(config, "sign", str(run_dir / "report.html"), "--role", role, "--key", str(made[role]))
        assert result.returncode == 0, result.stderr
    verified = relcheck_cli(config, "verify", str(run_dir / "report.html"))
    assert verified.returncode == 0, verified.stdout
    assert "signed  QA Team Lead: priya.menon@kundli.example (SHA256:" in verified.stdout
    assert "signed  Release Manager: meera.nair@kundli.example" in verified.stdout
    html = (run_dir / "report.html").read_text()
    assert "priya.menon@kundli.example" in html[html.index("<!-- relcheck:signoffs -->") :]
    checked = bench.run(config, "-m", "signoff")
    assert checked.status("test_role_signed_off[QA Team Lead]") == "pass"
    assert checked.status("test_role_signed_off[Release Manager]") == "pass"
    assert checked.status("test_role_signed_off[CTO/Technical Director]") == "pending attestation"


def test_a_partial_run_is_written_beside_the_phase_report_and_cannot_be_signed(bench, signed_run):
    config, run_dir, made = signed_run
    complete = (run_dir / "manifest.json").read_bytes()
    partial = bench.run(config, "-m", "documentation", "-k", "release_notes")
    assert partial.verdict == "PARTIAL" and partial.run_dir == run_dir.with_name("documentation-partial")
    assert partial.manifest["run"]["partial"][0] == "partial run: narrowed by -k 'release_notes'"
    assert (run_dir / "manifest.json").read_bytes() == complete and not (run_dir / "history").exists()
    role = "QA Team Lead"
    refused = relcheck_cli(config, "sign", str(partial.run_dir), "--role", role, "--key", str(made[role]))
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "relcheck: will not sign documentation-partial: its verdict is PARTIAL (partial run: narrowed by -k "
        "'release_notes')"
    )


def test_a_blocked_report_cannot_be_signed_and_a_stopped_run_is_partial(bench, keys, healthy, scratch_source):
    made, allowed = keys
    (scratch_source / "docs" / "api.md").unlink()  # the first documentation check fails
    changes = {"target": {"source": str(scratch_source)}, "signoff": {"allowed_signers": str(allowed)}}
    config = bench.config(changes, target=healthy)
    blocked = bench.run(config, "-m", "documentation")
    assert blocked.verdict == "BLOCKED"
    refused = relcheck_cli(
        config,
        "sign",
        str(blocked.run_dir),
        "--role",
        "QA Team Lead",
        "--key",
        str(made["QA Team Lead"]),
        env=bench.env,
    )
    assert refused.returncode == 2 and "will not sign documentation: its verdict is BLOCKED (" in refused.stderr
    stopped = bench.run(config, "-m", "documentation", "-x")
    assert stopped.verdict == "PARTIAL"
    assert any(" checks of its phases did not run (" in r for r in stopped.manifest["run"]["partial"])


def flip(path: Path, position: int) -> bytes:
    data = path.read_bytes()
    changed = bytearray(data)
    changed[position] = changed[position] ^ 0x01 if changed[position] ^ 0x01 else 0x41
    path.write_bytes(bytes(changed))
    return data


def test_any_changed_byte_fails_verification(signed_run):
    config, run_dir, made = signed_run
    cfg = config_module.load(config)
    signoff.sign(cfg, run_dir, "QA Team Lead", made["QA Team Lead"])
    assert signoff.verify(cfg, run_dir).ok
    rng = random.Random(7)
    targets = [
        run_dir / "manifest.json",
        run_dir / "signoffs" / "qa-team-lead.statement",
        run_dir / "signoffs" / "qa-team-lead.statement.sig",
        run_dir / "evidence.json",
    ]
    for path in targets:
        size = path.stat().st_size
        for position in sorted({0, size - 1, *rng.sample(range(size), min(size, 40))}):
            original = flip(path, position)
            try:
                assert not signoff.verify(cfg, run_dir).ok, f"{path.name}: byte {position} changed, still verified"
            finally:
                path.write_bytes(original)
    assert signoff.verify(cfg, run_dir).ok


def test_editing_a_status_in_the_html_fails_verification(signed_run):
    config, run_dir, _ = signed_run
    cfg = config_module.load(config)
    html = (run_dir / "report.html").read_text()
    edited = html.replace('data-status="fail"', 'data-status="pass"', 1).replace(">FAIL<", ">PASS<", 1)
    if edited == html:  # nothing failed: make a pass look like a failure instead
        edited = html.replace('data-status="pass"', 'data-status="fail"', 1).replace(">PASS<", ">FAIL<", 1)
    (run_dir / "report.html").write_text(edited)
    check = signoff.verify(cfg, run_dir)
    assert not check.ok and "report.html shows" in check.problems[0]
    (run_dir / "report.html").write_text(html.replace("release checklist</h2>", "release checklist (approved)</h2>"))
    assert "differs from what manifest.json and evidence.json render" in signoff.verify(cfg, run_dir).problems[0]


def test_wrong_role_key_wrong_namespace_and_another_manifest_are_rejected(signed_run, tmp_path):
    config, run_dir, made = signed_run
    cfg = config_module.load(config)
    refused = relcheck_cli(config, "sign", str(run_dir), "--role", "QA Team Lead", "--key", str(made["stranger"]))
    assert refused.returncode == 2 and "this key is not allowed for QA Team Lead" in refused.stderr
    refused = relcheck_cli(
        config, "sign", str(run_dir), "--role", "QA Team Lead", "--key", str(made["Release Manager"])
    )
    assert refused.returncode == 2
    signoff.sign(cfg, run_dir, "QA Team Lead", made["QA Team Lead"])
    statement = run_dir / "signoffs" / "qa-team-lead.statement"
    Path(f"{statement}.sig").unlink()
    other_ns = subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(made["QA Team Lead"]), "-n", "git", str(statement)],
        capture_output=True,
        text=True,
    )
    assert other_ns.returncode == 0
    check = signoff.verify(cfg, run_dir)
    assert not check.ok and "signature does not verify" in check.problems[0]
    forged = statement.read_text()
    Path(f"{statement}.sig").unlink()
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(made["stranger"]), "-n", "relcheck-release", str(statement)],
        check=True,
        capture_output=True,
    )
    assert "is not an allowed signer for priya.menon@kundli.example" in signoff.verify(cfg, run_dir).problems[0]
    statement.write_text(forged.replace(forged.split("manifest-sha256: ")[1][:64], "0" * 64))
    assert "signed another manifest" in signoff.verify(cfg, run_dir).problems[0]


def test_attestations_turn_pending_items_into_passes(bench, keys):
    made, allowed = keys
    config = bench.config({"signoff": {"allowed_signers": str(allowed)}})
    checked = bench.run(config, "-m", "post_release", "-k", "attested_task")
    assert checked.status("test_attested_task[Update runbooks]") == "pending attestation"
    done = relcheck_cli(
        config,
        "attest",
        "--item",
        "Post-Release Tasks / Documentation :: Update runbooks",
        "--role",
        "Release Manager",
        "--note",
        "runbook v7: rollback section rewritten",
        "--key",
        str(made["Release Manager"]),
        env=bench.env,
    )
    assert done.returncode == 0, done.stderr
    checked = bench.run(config, "-m", "post_release", "-k", "attested_task")
    assert checked.status("test_attested_task[Update runbooks]") == "pass"
    assert checked.status("test_attested_task[Plan improvements]") == "pending attestation"
    evidence = checked.evidence("test_attested_task[Update runbooks]")[0]
    assert evidence["rows"][0][:2] == ["Release Manager", "meera.nair@kundli.example"]
    attestation = next((bench.tmp / "reports").glob("*/attestations/*.statement"))
    attestation.write_text(attestation.read_text().replace("rewritten", "skipped"))
    checked = bench.run(config, "-m", "post_release", "-k", "attested_task")
    assert checked.status("test_attested_task[Update runbooks]") == "pending attestation"


@pytest.mark.parametrize("expires, status", [("2099-12-31", "waived"), ("2020-01-31", "fail")])
def test_a_signed_item_waiver_waives_a_failure_until_it_expires(bench, keys, scratch_source, expires, status):
    made, allowed = keys
    (scratch_source / "docs" / "api.md").unlink()
    config = bench.config({"target": {"source": str(scratch_source)}, "signoff": {"allowed_signers": str(allowed)}})
    waived = relcheck_cli(
        config,
        "waive",
        "--item",
        "Pre-Release Verification / Documentation :: Technical documentation complete",
        "--id",
        "WVR-9",
        "--reason",
        "api.md moves to the wiki",
        "--expires",
        expires,
        "--role",
        "Release Manager",
        "--key",
        str(made["Release Manager"]),
        env=bench.env,
    )
    assert waived.returncode == 0, waived.stderr
    checked = bench.run(config, "-m", "documentation", "-k", "technical_documentation")
    assert checked.status("test_technical_documentation") == status
    assert "WVR-9" in checked.reason("test_technical_documentation")
    assert (checked.returncode == 0) == (status == "waived")


def test_an_unsigned_waiver_does_not_count(bench, keys, scratch_source):
    _, allowed = keys
    (scratch_source / "docs" / "api.md").unlink()
    (scratch_source / "release" / "waivers.toml").write_text(
        '[[waiver]]\nid = "WVR-1"\nitem = "Pre-Release Verification / Documentation :: Technical documentation '
        'complete"\nreason = "trust me"\napprover = "Release Manager"\nexpires = 2099-01-01\n'
    )
    config = bench.config({"target": {"source": str(scratch_source)}, "signoff": {"allowed_signers": str(allowed)}})
    checked = bench.run(config, "-k", "technical_documentation")
    assert checked.status("test_technical_documentation") == "fail"
    assert "(waiver WVR-1: not signed by its approver)" in checked.reason("test_technical_documentation")


def chromium() -> str:
    return installed(
        shutil.which("chromium") or shutil.which("chromium-browser"), "chromium", "RELCHECK_REQUIRE_CHROMIUM"
    )


def test_the_report_in_a_real_browser_keeps_target_content_inert(bench, tmp_path):
    browser = chromium()
    hostile = HostileTarget()
    config = bench.config({"target": {"mode": "remote", "base_url": hostile.url, "service": {"manager": "none"}}})
    checked = bench.run(config, "-m", "post_deploy", "-k", "health")
    report = checked.run_dir / "report.html"
    assert HostileTarget.PAYLOAD not in report.read_text()
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=3000",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    hostile.close()
    assert "PWNED" not in dom.split("<title", 1)[1].split("</title>", 1)[0]
    assert "&lt;script&gt;document.title='PWNED'&lt;/script&gt;" in dom
    for heading in ("Deployment Procedure", "Post-Deployment", "Other phases (not run here)"):
        assert f">{heading}<" in dom  # the run's own sections first ...
    for folded in ("Pre-Release Verification / Code Quality: ", "Release Sign-off / Technical Sign-off: "):
        assert f">{folded}" in dom  # ... other phases folded, one line per section
    assert 'data-status="fail"' in dom and ">FAIL<" in dom and ">NOT RUN<" in dom and "results-table" in dom


def test_a_pre_release_run_of_a_tree_other_than_the_release_is_blocked(bench, healthy, scratch_source):
    """What was tested is what is released: the same checks pass, but the tree is not v1.1.0's."""
    overview = scratch_source / "docs" / "overview.md"
    overview.write_text(overview.read_text() + "\nOne more line.\n")
    (scratch_source / "notes.txt").write_text("a file the release does not have\n")
    checked = bench.run(
        bench.config({"target": {"source": str(scratch_source)}}, target=healthy), "-m", "documentation"
    )
    assert all(status == "pass" for status, _ in checked.statuses().values())
    assert checked.verdict == "BLOCKED"
    assert checked.manifest["verdict_reasons"][0] == (
        "tested tree differs from v1.1.0: 1 file modified, 1 file not in v1.1.0"
    )
    tested = checked.manifest["tested_tree"]
    assert not tested["same"] and sorted(tested["changes"]) == [["A", "notes.txt"], ["M", "docs/overview.md"]]
