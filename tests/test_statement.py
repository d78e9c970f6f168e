"""The in-toto statement of a run (relcheck statement) and its verification, with ssh-keygen alone and with
`relcheck verify --statement`: over a run directory written here from exact inputs (no phase is run)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from conftest import REPO, ROLES, Workbench, installed, relcheck_cli
from relcheck.core import checklist as checklist_module
from relcheck.core import config as config_module
from relcheck.core import evidence as evidence_module
from relcheck.core.files import write_atomic, write_json
from relcheck.core.statuses import Status
from relcheck.run import outputs, results, statement
from relcheck.run.report import render
from relcheck.signing import signatures, waivers

QA, RM = "QA Team Lead", "Release Manager"
DOCS = "Pre-Release Verification / Documentation"


@pytest.fixture(scope="module")
def release_tree():
    """The reference's tested tree against v1.1.0 (computed once: a git comparison)."""
    return outputs.tested_tree(config_module.load(config_module.REPO / "relcheck.toml"))


def write_run(cfg, tree: dict, statuses: dict[str, str], label: str = "documentation", partial=()) -> Path:
    """A documentation run's manifest, evidence and report as relcheck writes them: each documentation item checked
    by one check with the given status (item text -> status; "pass" for the rest)."""
    checklist = checklist_module.load()
    checks = {}
    for item in (i for i in checklist.items if i.phase == "documentation"):
        nodeid = f"checks/test_documentation.py::test_{signatures.slug(item.text).replace('-', '_')}"
        blocks = [{"kind": "text", "title": "seen", "text": item.text}]
        status = Status(statuses.get(item.text, "pass"))
        checks[item.key] = [
            results.CheckResult(nodeid, status, "" if status == Status.PASS else "because", 0.1, ["documentation"],
                                blocks, evidence_module.digest(blocks))
        ]  # fmt: skip
    found = results.item_results(checklist, checks, set(checks))
    verdict, reasons = results.verdict(found, {"documentation", "pre_release"})
    header = {
        "product": cfg.release.product,
        "release_version": cfg.release.version,
        "release_id": cfg.release.release_id,
        "release_ref": cfg.release.git_ref,
        "release_sha": tree["commit"],
        "tested_tree": tree,
        "checklist": {"title": checklist.title, "version": checklist.version},
        "run": {
            "label": label, "markexpr": "documentation", "started": "2026-12-01T10:00:00+00:00",
            "finished": "2026-12-01T10:05:00+00:00", "interrupted": False, "partial": list(partial), "target": {},
            "config_file": cfg.path.name, "config_sha256": statement.sha256_file(cfg.path), "relcheck_sha": "",
            "tools": {"python": "3.11.7", "pytest": "9.2.0", "bandit": "not installed"},
        },
        "contacts": [],
        "files": {"html": "report.html", "evidence": "evidence.json", "junit": "junit.xml"},
    }  # fmt: skip
    manifest = results.manifest(header, found, "PARTIAL" if partial else verdict, list(partial) + reasons)
    run_dir = cfg.reports_dir / cfg.release.release_id / label
    write_json(run_dir / "evidence.json", {c.nodeid: c.evidence for cs in checks.values() for c in cs})
    sha = write_json(run_dir / "manifest.json", manifest)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    evidence = json.loads((run_dir / "evidence.json").read_text())
    write_atomic(run_dir / "report.html", render(manifest, results.from_manifest(manifest, evidence), sha))
    return run_dir


@pytest.fixture
def attested(tmp_path, keys, scratch_source, release_tree):
    """A passing documentation run of the reference, its config (policy: 2 of QA, RM) and the role keys."""
    made, allowed = keys
    public = {role: Path(f"{made[role]}.pub").read_text() for role in ROLES}
    lines = [f'{ROLES[r]} namespaces="relcheck-release,{statement.namespace(r)}" {public[r]}' for r in ROLES]
    allowed.write_text("".join(lines))
    config = Workbench(tmp_path, {}).config(
        {
            "target": {"source": str(scratch_source)},
            "security": {"waivers": "../waivers.toml"},  # beside the tree: a waiver added here leaves the tree as run
            "signoff": {
                "allowed_signers": str(allowed),
                "policy": {"documentation": {"roles": [QA, RM], "required": 2}},
            },
        }
    )
    cfg = config_module.load(config)
    return cfg, write_run(cfg, release_tree, {}), made


def signed_by(cfg, run_dir: Path, made: dict, *roles: str) -> Path:
    for role in roles:
        path = statement.write(cfg, run_dir, role, made[role])
    return path


def payload(path: Path) -> dict:
    return json.loads(statement.read_envelope(path).payload)


def readme_block(marker: str) -> str:
    text = (REPO / "README.md").read_text()
    return re.search(rf"<!-- {marker} -->\n```bash\n(.*?)```", text, re.S).group(1)


def test_the_readme_commands_verify_a_statement_with_ssh_keygen_alone(attested, tmp_path):
    installed(shutil.which("jq"), "jq", "RELCHECK_REQUIRE_JQ")
    cfg, run_dir, made = attested
    path = signed_by(cfg, run_dir, made, QA, RM)
    work = tmp_path / "verifier"  # what a verifier has: the envelope and the published allowed signers
    (work / "reports" / "kundli-service-1.1.0" / "pre_release").mkdir(parents=True)
    (work / "examples" / "signoff").mkdir(parents=True)
    (work / "reports" / "kundli-service-1.1.0" / "pre_release" / "statement.dsse.json").write_bytes(path.read_bytes())
    (work / "examples" / "signoff" / "allowed_signers").write_bytes(
        cfg.resolve(cfg.signoff.allowed_signers).read_bytes()
    )
    done = subprocess.run(
        ["bash", "-e", "-c", readme_block("statement-verify")], cwd=work, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('Good "relcheck-release-') == 2, done.stdout
    assert json.loads((work / "payload.json").read_text())["predicate"]["result"] == "PASSED"
    # a role's key under another role's namespace is no signature of that role
    wrong = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", "examples/signoff/allowed_signers", "-I", ROLES[QA],
         "-n", statement.namespace(RM), "-s", f"{statement.namespace(QA)}.sig"],
        cwd=work, stdin=(work / "pae.bin").open("rb"), capture_output=True,
    )  # fmt: skip
    assert wrong.returncode != 0


def test_a_statement_records_the_release_and_maps_statuses_never_as_passed(attested, release_tree):
    cfg, run_dir, made = attested
    found = payload(statement.write(cfg, run_dir))
    assert found["_type"] == "https://in-toto.io/Statement/v1"
    assert found["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
    names = [s["name"] for s in found["subject"]]
    assert names == [
        "git-commit:v1.1.0",
        "git-tree:v1.1.0",
        "migration:migrations/versions/0001_initial.py",
        "migration:migrations/versions/0002_compatibility_reports.py",
    ]
    assert found["subject"][0]["digest"] == {"gitCommit": release_tree["commit"]}
    predicate = found["predicate"]
    assert predicate["result"] == "PASSED" and len(predicate["passedTests"]) == 6 and not predicate["failedTests"]
    configuration = {c["name"]: c for c in predicate["configuration"]}
    assert configuration["config:relcheck.toml"]["digest"]["sha256"] == statement.sha256_file(cfg.path)
    assert configuration["tool:pytest"]["uri"] == "pkg:pypi/pytest@9.2.0" and "tool:bandit" not in configuration
    assert configuration["advisories:examples/advisories"]["annotations"]["ageFrom"] == "a sample (no age)"
    assert predicate["relcheck"]["results"][0] == {
        "name": "manifest.json",
        "digest": {"sha256": statement.sha256_file(run_dir / "manifest.json")},
    }
    mixed = write_run(
        cfg,
        release_tree,
        {"Release notes prepared": "not verified", "Deployment guide updated": "pending attestation"},
        label="docs-mixed",
    )
    predicate = payload(statement.write(cfg, mixed))["predicate"]
    assert predicate["result"] == "FAILED" and len(predicate["passedTests"]) == 4
    assert predicate["failedTests"] == [
        "checks/test_documentation.py::test_release_notes_prepared",
        "checks/test_documentation.py::test_deployment_guide_updated",
    ]
    assert predicate["relcheck"]["testsByStatus"]["not verified"] == [predicate["failedTests"][0]]
    assert predicate["relcheck"]["resultReasons"][:2] == [
        "verdict BLOCKED",
        "1 check(s) not verified",
    ]
    warned = write_run(cfg, release_tree, {"Release notes prepared": "warn"}, label="docs-warned")
    assert payload(statement.write(cfg, warned))["predicate"]["result"] == "WARNED"


def test_a_partial_run_and_an_edited_report_get_no_statement(attested, release_tree):
    cfg, run_dir, _ = attested
    partial = write_run(cfg, release_tree, {}, label="docs-partial", partial=["partial run: narrowed by -k 'x'"])
    with pytest.raises(signatures.SigningError, match=r"will not attest a partial run \(partial run: narrowed"):
        statement.write(cfg, partial)
    manifest = run_dir / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"pass"', '"fail"', 1))
    with pytest.raises(signatures.SigningError, match="will not attest a report that does not verify"):
        statement.write(cfg, run_dir)


def test_the_policy_needs_its_roles_and_a_replayed_or_changed_statement_is_rejected(attested, release_tree):
    cfg, run_dir, made = attested
    path = signed_by(cfg, run_dir, made, QA)
    check = statement.verify(cfg, path)
    assert check.problems == [f"signed by 1 of the 2 required roles of {QA}, {RM} ({QA})"]
    signed_by(cfg, run_dir, made, RM)
    assert statement.verify(cfg, path).ok
    verified = relcheck_cli(cfg.path, "verify", "--statement", str(path))
    assert verified.returncode == 0 and f"signed  {QA}: {ROLES[QA]} (SHA256:" in verified.stdout
    missing = relcheck_cli(cfg.path, "verify", "--statement", str(path.with_name("none.json")))
    assert missing.returncode == 2 and missing.stderr == f"relcheck: no statement at {path.with_name('none.json')}\n"
    other = cfg.model_copy(update={"release": cfg.release.model_copy(update={"version": "1.2.0"})})
    assert "the statement is for kundli-service-1.1.0, not kundli-service-1.2.0 (replayed?)" in (
        statement.verify(other, path).problems
    )
    write_run(cfg, release_tree, {"Release notes prepared": "warn"})  # the gate runs again
    assert statement.verify(cfg, path).problems == [
        f"the statement is of another run than {run_dir / 'manifest.json'} (an earlier one?)"
    ]
    no_policy = cfg.model_copy(update={"signoff": cfg.signoff.model_copy(update={"policy": {}})})
    assert "not verified: no signoff.policy.documentation says which roles must sign this run" in (
        statement.verify(no_policy, path).problems
    )
    migration = cfg.source / "migrations" / "versions" / "0002_compatibility_reports.py"
    migration.write_text(migration.read_text() + "# changed after the run\n")
    problems = statement.verify(cfg, path).problems
    assert any(
        p.startswith("subject migration:migrations/versions/0002_compatibility_reports.py: digest") for p in problems
    )
    assert any(p.startswith("subject git-tree:v1.1.0: digest") for p in problems)
    (cfg.source / "migrations" / "versions" / "0003_new.py").write_text("# a migration the statement lacks\n")
    assert "migration:migrations/versions/0003_new.py is not a subject of the statement" in (
        statement.verify(cfg, path).problems
    )


def test_a_tampered_payload_and_a_role_outside_its_namespace_are_rejected(attested):
    cfg, run_dir, made = attested
    path = signed_by(cfg, run_dir, made, QA, RM)
    pristine = path.read_text()
    envelope = json.loads(pristine)
    found = json.loads(statement.read_envelope(path).payload)
    found["subject"][2]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = statement.Envelope(statement.payload_of(found), statement.PAYLOAD_TYPE, {}).to_dict()[
        "payload"
    ]
    path.write_text(json.dumps(envelope))
    problems = statement.verify(cfg, path).problems
    assert [p.split(":")[0] for p in problems[:2]] == [f"{QA} ({ROLES[QA]})", f"{RM} ({ROLES[RM]})"]
    assert "signature does not verify" in problems[0]
    assert any(
        p.startswith("subject migration:migrations/versions/0001_initial.py: digest sha256:0000") for p in problems
    )
    # the QA lead signs under the Release Manager's namespace: as neither role does it count
    path.write_text(pristine)
    genuine = statement.read_envelope(path)
    forged = signatures.dearmor(signatures.sign(genuine.pae(), made[QA], statement.namespace(RM))).hex()
    for keyid in (f"{statement.namespace(RM)}/{ROLES[QA]}", f"{statement.namespace(QA)}/{ROLES[QA]}"):
        genuine.signatures = {keyid: statement.Signature(keyid, forged)}
        path.write_text(json.dumps(genuine.to_dict()))
        problems = statement.verify(cfg, path).problems
        assert problems[0] in (
            f"signature {keyid}: {ROLES[QA]} is not a principal of a role with namespace {statement.namespace(RM)}",
            f"{QA} ({ROLES[QA]}): signature does not verify (InvalidSignature: altered statement or signature, or "
            "another namespace)",
        ), problems
    # a sign-off of the manifest (namespace relcheck-release) is no signature of the statement either
    signoff_sig = signatures.dearmor(signatures.sign(genuine.pae(), made[QA])).hex()
    keyid = f"{statement.namespace(QA)}/{ROLES[QA]}"
    genuine.signatures = {keyid: statement.Signature(keyid, signoff_sig)}
    path.write_text(json.dumps(genuine.to_dict()))
    assert "signature does not verify" in statement.verify(cfg, path).problems[0]


def test_an_expired_waiver_fails_the_statement(attested, release_tree):
    cfg, run_dir, made = attested
    key = "Pre-Release Verification / Documentation :: Release notes prepared"
    waivers.waive(cfg, "WVR-7", "", key, "notes move to the wiki", RM, "2026-11-30", made[RM])
    found = payload(statement.write(cfg, run_dir))["predicate"]
    assert found["result"] == "FAILED"
    assert found["relcheck"]["resultReasons"] == ["waiver WVR-7 expired on 2026-11-30"]
    assert found["relcheck"]["waivers"] == [
        {"id": "WVR-7", "finding": "", "item": key, "approver": RM, "principal": ROLES[RM],
         "expires": "2026-11-30", "state": "expired on 2026-11-30"},
    ]  # fmt: skip
    statement.write(cfg, run_dir, QA, made[QA])
    later = cfg.source / cfg.security.waivers
    later.write_text(later.read_text().replace("2026-11-30", "2026-12-31"))  # unsigned now: listed, not counted
    with pytest.raises(signatures.SigningError, match="is signed over another statement .* remove it to attest anew"):
        statement.write(cfg, run_dir)  # a signed statement is never rewritten under its signatures
    (run_dir / statement.FILE).unlink()
    path = signed_by(cfg, run_dir, made, QA, RM)
    assert payload(path)["predicate"]["relcheck"]["waivers"][0]["state"].startswith("signature invalid")
    assert statement.verify(cfg, path, today=date(2026, 12, 2)).ok
    waivers.waive(cfg, "WVR-8", "", key, "still on the wiki", RM, "2026-12-31", made[RM])
    (run_dir / statement.FILE).unlink()
    path = signed_by(cfg, run_dir, made, QA, RM)
    assert payload(path)["predicate"]["result"] == "PASSED"
    assert statement.verify(cfg, path, today=date(2026, 12, 2)).ok
    assert "waiver WVR-8 expired on 2026-12-31" in statement.verify(cfg, path, today=date(2027, 1, 2)).problems


def test_artifacts_are_subjects_and_one_missing_or_changed_is_named(attested, tmp_path):
    cfg, run_dir, made = attested
    wheel = tmp_path / "dist" / "kundli_service-1.1.0-py3-none-any.whl"
    release = cfg.release.model_copy(update={"artifacts": [str(tmp_path / "dist" / "*.whl")]})
    with_artifacts = cfg.model_copy(update={"release": release})
    with pytest.raises(signatures.SigningError, match=r"release.artifacts: '.*/dist/\*.whl' matches no file in"):
        statement.write(with_artifacts, run_dir)
    wheel.parent.mkdir()
    wheel.write_bytes(b"a built distribution")
    path = signed_by(with_artifacts, run_dir, made, QA, RM)
    subject = payload(path)["subject"][2]  # after the commit and the tree, before the migrations
    assert subject == {"name": f"artifact:{wheel}", "digest": {"sha256": statement.sha256_file(wheel)}}
    assert statement.verify(with_artifacts, path).ok
    wheel.write_bytes(b"another build")
    assert statement.verify(with_artifacts, path).problems == [
        f"subject artifact:{wheel}: digest sha256:{subject['digest']['sha256']} is not the file's "
        f"sha256:{statement.sha256_file(wheel)}"
    ]


def test_edited_evidence_an_expired_signer_and_a_malformed_payload_are_rejected(attested, tmp_path):
    cfg, run_dir, made = attested
    path = signed_by(cfg, run_dir, made, QA, RM)
    elsewhere = tmp_path / "copied.dsse.json"  # passed around as a CI artifact: judged against the release's run
    shutil.copy(path, elsewhere)
    assert statement.verify(cfg, elsewhere).ok
    evidence = run_dir / "evidence.json"
    pristine = evidence.read_text()
    evidence.write_text(pristine.replace('"seen"', '"seen (edited)"', 1))
    problems = statement.verify(cfg, elsewhere).problems
    assert any(p.endswith("does not match its digest in the manifest") for p in problems), problems
    assert f"the statement is of another run than {evidence} (an earlier one?)" in problems
    evidence.unlink()
    assert f"missing in {run_dir}: evidence.json" in statement.verify(cfg, path).problems
    evidence.write_text(pristine)
    # a signer whose key expired (valid-before, OpenSSH's format) no longer counts; a principal pattern does
    allowed = cfg.resolve(cfg.signoff.allowed_signers)
    lines = allowed.read_text().splitlines()
    qa_line = next(line for line in lines if line.startswith(ROLES[QA]))
    expired = qa_line.replace(" namespaces=", ' valid-before="20250101",namespaces=', 1)
    allowed.write_text("\n".join(expired if line == qa_line else line for line in lines) + "\n")
    assert statement.verify(cfg, path).problems[0].startswith(f"{QA} ({ROLES[QA]}): key SHA256:")
    pattern = qa_line.replace(ROLES[QA], "*@kundli.example", 1)
    allowed.write_text("\n".join(pattern if line == qa_line else line for line in lines) + "\n")
    assert statement.verify(cfg, path).ok
    # a payload without a result, or with subjects that are not objects: one problem, no traceback
    envelope = json.loads(path.read_text())
    for broken in ({"predicate": {"relcheck": {}}}, {**payload(path), "subject": "x"}):
        envelope["payload"] = statement.Envelope(statement.payload_of(broken), statement.PAYLOAD_TYPE, {}).to_dict()[
            "payload"
        ]
        path.write_text(json.dumps(envelope))
        (problem,) = statement.verify(cfg, path).problems
        assert problem.startswith("the payload is not a relcheck statement")
        checked = relcheck_cli(cfg.path, "verify", "--statement", str(path))
        assert checked.returncode == 1 and "Traceback" not in checked.stderr, checked.stderr
