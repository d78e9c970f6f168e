"""Code Quality, Security Checks and Documentation: each check passes on the healthy reference service (see
healthy_run) and fails, in these tests, on a real fault."""

import json
import os
import re
import subprocess
import time

import pytest
from fakes import FakeGitHub, TlsProxy, self_signed_certificate
from gitrepo import REVIEWED, Repo, release_history

from conftest import H11_ADVISORY, H11_ALIAS, REPO, relcheck_cli, transitive_advisory
from relcheck.core.config import SecurityDocs
from relcheck.probes import tracker

PRE_RELEASE = [
    "test_no_critical_bugs",
    "test_security_scan",
    "test_code_review",
    "test_documentation_updated",
    "test_vulnerabilities_addressed",
    "test_access_controls",
    "test_audit_logging",
    "test_security_documentation",
    "test_api_documentation",
    "test_api_conformance",
    "test_access_controls_conformance",
    "test_technical_documentation",
    "test_release_notes",
    "test_deployment_guide",
    "test_configuration_guide",
    "test_troubleshooting_guide",
]


@pytest.mark.parametrize("check", PRE_RELEASE)
def test_passes_on_the_healthy_reference_service(healthy_run, check):
    assert healthy_run.status(check) == "pass", healthy_run.reason(check)


def test_the_shipped_advisory_sample_is_labelled_a_sample_and_only_for_the_reference_service(healthy_run, bench):
    assert healthy_run.status("test_security_scan_and_dependency_audit") == "warn"
    assert healthy_run.reason("test_security_scan_and_dependency_audit").endswith(
        "examples/advisories is a 7-record sample, not a full mirror"
    )
    checked = bench.run(bench.config({"release": {"product": "shop"}}), "-k", "dependency_audit")
    assert checked.status("test_security_scan_and_dependency_audit") == "not verified"
    assert "is a sample for kundli-service, not an advisory mirror" in checked.reason(
        "test_security_scan_and_dependency_audit"
    )


def test_data_protection_on_plain_http_warns_only_when_allowed(healthy_run, bench, healthy):
    """The reference service is internal (loopback): plain http is allowed and shown; otherwise it fails."""
    assert healthy_run.status("test_data_protection") == "warn"
    assert healthy_run.reason("test_data_protection").startswith("plain http, allowed for an internal-only service")
    config = bench.config({"security": {"data_protection": {"allow_plain_http": False}}}, target=healthy)
    checked = bench.run(config, "-k", "data_protection")
    assert checked.status("test_data_protection") == "fail"
    assert checked.reason("test_data_protection").endswith("plain http: data in transit is not encrypted")


def test_a_log_that_cannot_be_read_hides_no_definite_finding(bench, healthy):
    """No service log: the log part is not verified, but a definite finding elsewhere still fails the item."""
    no_log = {"target": {"service": {"log_file": ""}}}
    checked = bench.run(bench.config(no_log, target=healthy), "-k", "data_protection")
    assert checked.status("test_data_protection") == "not verified"
    assert checked.reason("test_data_protection").startswith("the service log is not scanned: no service log")
    strict = {**no_log, "security": {"data_protection": {"allow_plain_http": False}}}
    checked = bench.run(bench.config(strict, target=healthy), "-k", "data_protection")
    assert checked.status("test_data_protection") == "fail"
    assert checked.reason("test_data_protection").endswith("plain http: data in transit is not encrypted")


# --- Code Quality ----------------------------------------------------------------------------------------------
@pytest.fixture
def github():
    fake = FakeGitHub(token="ghp_test_token_123")
    yield fake
    fake.close()


def github_config(fake) -> dict:
    return {"api_url": fake.url, "repo": fake.repo, "token": "env:FAKE_GITHUB_TOKEN"}


def test_no_critical_bugs_reads_github_issues(bench, github):
    bench.env["FAKE_GITHUB_TOKEN"] = github.token
    github.add_issue(1, "Crash on leap day", ["bug", "critical"], "1.1.0", state="closed")
    github.add_issue(2, "Typo", ["docs"], "1.1.0")
    github.add_issue(3, "Jobs lost on restart", ["bug", "critical"], "1.2.0")
    github.add_issue(4, "Draft fix", ["critical"], "1.1.0", pull_request=True)
    github.add_issue(5, "Slow start", ["low"], "1.1.0")
    config = bench.config({"quality": {"tracker": {"kind": "github", "github": github_config(github)}}})
    assert bench.run(config, "-k", "critical_bugs").status("test_no_critical_bugs") == "pass"
    github.add_issue(6, "Wrong ascendant south of the equator", ["bug", "blocker"], "1.1.0")
    github.add_issue(7, "Second page", ["critical"], "1.1.0")
    checked = bench.run(config, "-k", "critical_bugs")
    assert checked.status("test_no_critical_bugs") == "fail"
    assert "2 open critical issue(s): #6 Wrong ascendant south of the equator, #7 Second page" == checked.reason(
        "test_no_critical_bugs"
    )
    assert any("page=2" in r for r in github.requests)
    github.add_issue(8, "Wrong nakshatra", ["critical"], "v1.1.0")  # the release's milestone, spelled as a tag
    github.add_issue(9, "Leaks tokens", ["blocker"], None)  # no milestone: it applies to this release too
    github.add_issue(10, "Old branch only", ["critical"], "v1.10.0")
    assert bench.run(config, "-k", "critical_bugs").reason("test_no_critical_bugs") == (
        "4 open critical issue(s): #6 Wrong ascendant south of the equator, #7 Second page, #8 Wrong nakshatra, "
        "#9 Leaks tokens (no milestone)"
    )


def test_no_critical_bugs_is_not_verified_without_a_tracker_or_with_bad_credentials(bench, github):
    checked = bench.run(bench.config({"quality": {"tracker": {"kind": "none"}}}), "-k", "critical_bugs")
    assert checked.status("test_no_critical_bugs") == "not verified"
    bench.env["FAKE_GITHUB_TOKEN"] = "wrong"
    checked = bench.run(
        bench.config({"quality": {"tracker": {"kind": "github", "github": github_config(github)}}}),
        "-k",
        "critical_bugs",
    )
    assert checked.status("test_no_critical_bugs") == "not verified"
    reason = checked.reason("test_no_critical_bugs")
    assert "401" in reason and "Bad credentials" in reason


def test_no_critical_bugs_reads_an_export_file(bench, scratch_source):
    issues = json.loads((scratch_source / "release/issues.json").read_text())
    issues.append(
        {
            "number": 99,
            "title": "Health check lies",
            "state": "open",
            "labels": [{"name": "critical"}],
            "milestone": {"title": "1.1.0"},
            "html_url": "https://example.invalid/99",
        }
    )
    (scratch_source / "release/issues.json").write_text(json.dumps(issues))
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}), "-k", "critical_bugs")
    assert checked.status("test_no_critical_bugs") == "fail" and "#99 Health check lies" in checked.reason(
        "test_no_critical_bugs"
    )
    (scratch_source / "release/issues.csv").write_text(
        "number,title,state,labels,milestone\n5,Data loss,open,bug;blocker,1.1.0\n7,Old,closed,critical,1.1.0\n"
    )
    checked = bench.run(
        bench.config(
            {"target": {"source": str(scratch_source)}, "quality": {"tracker": {"file": "release/issues.csv"}}}
        ),
        "-k",
        "critical_bugs",
    )
    assert checked.reason("test_no_critical_bugs") == "1 open critical issue(s): #5 Data loss"


def test_an_export_matches_milestones_as_versions_counts_issues_without_one_and_reads_any_casing(bench, scratch_source):
    """v1.1.0 is the release 1.1.0, an issue without a milestone applies to it, "Open" is open; 1.10.0 is another
    release, and a state that is neither open nor closed is not verified, never ignored."""
    export = scratch_source / "release/issues.csv"
    config = bench.config(
        {"target": {"source": str(scratch_source)}, "quality": {"tracker": {"file": "release/issues.csv"}}}
    )
    header, later = "number,title,state,labels,milestone\n", "7,Later,open,critical,1.10.0\n8,Fixed,Closed,critical,\n"
    export.write_text(header + "5,Data loss,Open,critical,v1.1.0\n6,Leak,OPEN,blocker,\n" + later)
    assert bench.run(config, "-k", "critical_bugs").reason("test_no_critical_bugs") == (
        "2 open critical issue(s): #5 Data loss, #6 Leak (no milestone)"
    )
    export.write_text(header + later)
    assert bench.run(config, "-k", "critical_bugs").status("test_no_critical_bugs") == "pass"
    export.write_text(header + "9,Parked,Waiting for customer,critical,1.1.0\n")
    checked = bench.run(config, "-k", "critical_bugs")
    assert checked.status("test_no_critical_bugs") == "not verified"
    assert checked.reason("test_no_critical_bugs").startswith("issue #9 has state 'Waiting for customer', neither open")


def test_a_stale_tracker_export_is_not_verified_naming_the_key(bench, scratch_source):
    """An export older than quality.tracker.max_age_days (7) says nothing of the bugs filed since: not verified —
    dated by its file time, or by its last commit when committed unchanged (a fresh checkout is no fresh export)."""
    export = scratch_source / "release/issues.json"
    config = bench.config({"target": {"source": str(scratch_source)}})
    assert bench.run(config, "-k", "critical_bugs").status("test_no_critical_bugs") == "pass"
    old = time.time() - 10 * 86400
    os.utime(export, (old, old))
    checked = bench.run(config, "-k", "critical_bugs")
    assert checked.status("test_no_critical_bugs") == "not verified"
    assert checked.reason("test_no_critical_bugs").startswith("tracker export issues.json is stale: 10 days old")
    assert checked.reason("test_no_critical_bugs").endswith(
        "(the file's modification time), more than 7 (re-export it, or raise quality.tracker.max_age_days)"
    )
    os.utime(export)
    git = ["git", "-C", str(scratch_source)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "release/issues.json"], check=True)
    dated = {**os.environ, "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z"}
    commit = [*git, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "export"]
    subprocess.run(commit, check=True, env=dated)
    found = tracker.fresh(export, scratch_source, 36500)
    assert found == "2026-01-01 00:00 UTC (its last commit)"
    export.write_text(export.read_text() + "\n")  # changed since: written now
    assert tracker.fresh(export, scratch_source, 7).endswith("(the file's modification time)")


def test_security_scan_fails_on_a_new_high_finding_and_is_not_verified_on_unparsable_code(bench, scratch_source):
    (scratch_source / "kundli" / "debug.py").write_text(
        "import subprocess\n\n\ndef run(command):\n    return subprocess.call(command, shell=True)\n"
    )
    config = bench.config({"target": {"source": str(scratch_source)}})
    checked = bench.run(config, "-k", "security_scan")
    assert checked.status("test_security_scan") == "fail"
    assert "B602 kundli/debug.py:5" in checked.reason("test_security_scan")
    assert checked.status("test_security_scan_and_dependency_audit") == "fail"
    assert ["introduced", "B602 kundli/debug.py:5 return subprocess.call(command, shell=True)"] in next(
        b for b in checked.evidence("test_security_scan") if b["title"].endswith(": against 1.0.0")
    )["rows"]
    (scratch_source / "kundli" / "debug.py").write_text("def broken(:\n")
    checked = bench.run(config, "-k", "security_scan")
    assert checked.status("test_security_scan") == "not verified"
    assert "bandit could not scan" in checked.reason("test_security_scan")


def test_code_review_finds_unreviewed_changes(bench, tmp_path, github):
    repo = release_history(
        tmp_path / "repo",
        [("Fix ascendant" + REVIEWED, {"app/core.py": "x = 1\n"}), ("Quick hotfix", {"app/core.py": "x = 2\n"})],
    )
    config = bench.config({"target": {"repository": str(repo.path)}})
    checked = bench.run(config, "-k", "code_review")
    assert checked.status("test_code_review") == "fail"
    assert checked.reason("test_code_review").startswith("1 unreviewed change(s):")
    assert "Quick hotfix" in checked.reason("test_code_review")


def test_a_self_review_does_not_count_and_no_review_data_is_not_verified(bench, tmp_path):
    self_review = "\n\nReviewed-by: Dev One <dev@example.invalid>"
    repo = release_history(
        tmp_path / "repo",
        [("Fix ascendant" + REVIEWED, {"app/core.py": "x = 1\n"}), ("Tweak" + self_review, {"app/core.py": "x = 2\n"})],
    )
    checked = bench.run(bench.config({"target": {"repository": str(repo.path)}}), "-k", "code_review")
    assert checked.status("test_code_review") == "fail"
    assert checked.reason("test_code_review") == f"1 unreviewed change(s): {repo.git('rev-parse', 'HEAD')[:10]} Tweak"
    bare = Repo(tmp_path / "bare")
    bare.commit("Release 1.0.0", {"a.txt": "a"})
    bare.tag("v1.0.0")
    bare.commit("Change", {"a.txt": "b"})
    bare.tag("v1.1.0")
    checked = bench.run(bench.config({"target": {"repository": str(bare.path)}}), "-k", "code_review")
    assert checked.status("test_code_review") == "not verified"
    assert checked.reason("test_code_review").startswith("no review data: no change carries a review trailer")


def test_code_review_accepts_reviewed_merges_and_approved_pull_requests(bench, tmp_path, github):
    repo = release_history(tmp_path / "repo", [])
    repo.git("tag", "-d", "v1.1.0")
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("wip", {"app/core.py": "x = 3\n"})
    repo.git("checkout", "-q", "main")
    repo.merge("feature", "Merge pull request #21 from dev/feature")
    repo.commit("Speed up charts (#22)", {"app/core.py": "x = 4\n"})  # a squash merge
    repo.tag("v1.1.0")
    without_access = bench.run(bench.config({"target": {"repository": str(repo.path)}}), "-k", "code_review")
    assert without_access.status("test_code_review") == "not verified"
    assert without_access.reason("test_code_review").startswith(
        "2 of 2 change(s) came through pull requests whose reviews are not looked up without quality.review.github"
    )
    github.reviews[22] = [{"user": {"login": "meera"}, "state": "APPROVED"}]
    bench.env["FAKE_GITHUB_TOKEN"] = github.token
    config = bench.config(
        {"target": {"repository": str(repo.path)}, "quality": {"review": {"github": github_config(github)}}}
    )
    assert bench.run(config, "-k", "code_review").status("test_code_review") == "fail"
    github.reviews[21] = [
        {"user": {"login": "mallory"}, "state": "COMMENTED"},
        {"user": {"login": "meera"}, "state": "APPROVED"},
    ]
    checked = bench.run(config, "-k", "code_review")
    assert checked.status("test_code_review") == "pass"


def test_documentation_updated_needs_docs_with_code_and_a_changelog_entry(bench, tmp_path):
    repo = release_history(tmp_path / "repo", [("Change code only" + REVIEWED, {"app/core.py": "x = 1\n"})])
    source = tmp_path / "repo"
    changes = {
        "target": {"repository": str(repo.path), "source": str(source)},
        "quality": {"docs_follow_code": {"code_paths": ["app"], "doc_paths": ["docs", "CHANGELOG.md"]}},
    }
    checked = bench.run(bench.config(changes), "-k", "documentation_updated")
    assert checked.status("test_documentation_updated") == "fail"
    assert "CHANGELOG.md has no entry for 1.1.0" in checked.reason("test_documentation_updated")
    (source / "CHANGELOG.md").write_text("# Changelog\n\n## [1.1.0] - 2026-11-20\n- faster\n")
    checked = bench.run(bench.config(changes), "-k", "documentation_updated")
    assert (
        checked.reason("test_documentation_updated") == "1 code file(s) changed since v1.0.0 but no documentation did"
    )


def test_history_checks_are_not_verified_without_the_previous_release(bench, tmp_path):
    repo = Repo(tmp_path / "repo")
    repo.commit("only" + REVIEWED, {"a.txt": "a"})
    repo.tag("v1.1.0")
    checked = bench.run(bench.config({"target": {"repository": str(repo.path)}}), "-k", "code_review")
    assert checked.status("test_code_review") == "not verified"
    assert "v1.0.0 is not in the target's git history" in checked.reason("test_code_review")


# --- Security Checks -----------------------------------------------------------------------------------------
def pin(source, old: str, new: str) -> None:
    path = source / "requirements.txt"
    path.write_text(path.read_text().replace(old, new))


def test_dependency_audit_finds_a_vulnerable_pin(bench, scratch_source):
    pin(scratch_source, "starlette==1.10.0", "starlette==0.26.1")
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}), "-k", "dependency_audit")
    reason = checked.reason("test_security_scan_and_dependency_audit")
    assert checked.status("test_security_scan_and_dependency_audit") == "fail"
    assert reason == "1 vulnerable dependenc(ies): starlette==0.26.1 (PYSEC-2023-83)"


def test_dependency_audit_reads_pypa_yaml_and_refuses_unpinned(bench, scratch_source):
    pin(scratch_source, "uvicorn==0.54.0", "uvicorn==0.11.5")
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}), "-k", "dependency_audit")
    assert "uvicorn==0.11.5 (PYSEC-2020-150)" in checked.reason("test_security_scan_and_dependency_audit")
    pin(scratch_source, "uvicorn==0.11.5", "uvicorn>=0.30")
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}), "-k", "dependency_audit")
    reason = checked.reason("test_security_scan_and_dependency_audit")
    assert reason.startswith("1 requirement(s) could not be audited: requirements.txt:")
    assert reason.endswith("uvicorn>=0.30 (not pinned to one PEP 440 version)")


def test_a_vulnerable_transitive_distribution_fails_the_audit_and_vulnerabilities_addressed(bench, tmp_path):
    mirror = transitive_advisory(tmp_path)
    config = bench.config({"security": {"dependencies": {"advisories": [str(mirror)]}}})
    checked = bench.run(config, "-k", "dependency_audit or vulnerabilities_addressed")
    audit, addressed = "test_security_scan_and_dependency_audit", "test_vulnerabilities_addressed"
    assert checked.status(audit) == checked.status(addressed) == "fail"
    assert re.fullmatch(
        rf"1 vulnerable dependenc\(ies\): h11==\S+ \({H11_ADVISORY}, transitive\)", checked.reason(audit)
    )
    assert re.fullmatch(
        rf"1 finding\(s\) neither fixed nor validly waived: {H11_ADVISORY} in transitive h11==\S+ \(no waiver\)",
        checked.reason(addressed),
    )
    (audited,) = [b["rows"] for b in checked.evidence(audit) if b["title"] == "Audited distributions"]
    assert ["fastapi", "0.165.0", "requirements.txt:2"] in audited
    froms = {name: where for name, _, where in audited}
    assert froms["h11"] == froms["anyio"] == "transitive (resolved by pip)"
    facts = checked.facts(audit, "Dependency audit")
    assert facts["transitive distributions audited"] == str(len(audited) - 9)  # the nine pins of requirements.txt
    assert facts["transitive resolved by"].startswith("pip resolved ")


def test_a_transitive_set_pip_cannot_resolve_leaves_the_audit_not_verified(bench):
    """No index reachable: the pinned distributions are audited, the ones they pull in are not: never a pass."""
    unreachable = {"PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_INDEX_URL": "http://127.0.0.1:9/simple"}
    bench.env.update({**unreachable, "PIP_RETRIES": "1"})
    checked = bench.run(bench.config(), "-k", "dependency_audit or vulnerabilities_addressed")
    cause = "could not resolve the transitive distributions: the package index is unreachable"
    for test in ("test_security_scan_and_dependency_audit", "test_vulnerabilities_addressed"):
        assert checked.status(test) == "not verified", checked.reason(test)
        assert cause in checked.reason(test)


def test_dependency_audit_without_any_source_is_not_verified(bench):
    config = bench.config({"security": {"dependencies": {"advisories": [], "pip_audit": "off"}}})
    checked = bench.run(config, "-k", "dependency_audit")
    assert checked.status("test_security_scan_and_dependency_audit") == "not verified"


UNSIGNED = """
[[waiver]]
id = "WVR-7"
finding = "PYSEC-2023-83"
reason = "StaticFiles is not mounted"
approver = "{approver}"
expires = 2099-01-31
"""


def sign_waiver(config, made: dict, finding: str, expires: str) -> None:
    """WVR-7 for the finding, signed by the Release Manager (a release role)."""
    signed = relcheck_cli(
        config,
        "waive",
        "--finding",
        finding,
        "--id",
        "WVR-7",
        "--reason",
        "StaticFiles is not mounted",
        "--expires",
        expires,
        "--role",
        "Release Manager",
        "--key",
        str(made["Release Manager"]),
    )
    assert signed.returncode == 0, signed.stderr


@pytest.mark.parametrize(
    "waiver, status, reason",
    [
        (None, "fail", "1 finding(s) neither fixed nor validly waived: PYSEC-2023-83 (no waiver)"),
        (  # waived, but starlette 0.26.1 conflicts with the fastapi pin: what else it installs is unknown
            ("CVE-2023-29159", "2099-01-31"),
            "not verified",
            "the dependency audit is not complete: could not resolve the transitive distributions: the pins "
            "conflict: The user requested starlette==0.26.1; fastapi 0.165.0 depends on starlette>=1.6.0",
        ),
        (
            ("PYSEC-2023-83", "2020-01-31"),
            "fail",
            "1 finding(s) neither fixed nor validly waived: PYSEC-2023-83 (expired on 2020-01-31)",
        ),
        (
            "Security Team Lead",
            "fail",
            "1 finding(s) neither fixed nor validly waived: PYSEC-2023-83 (not signed by its approver)",
        ),
        (
            "The Intern",
            "fail",
            "1 finding(s) neither fixed nor validly waived: PYSEC-2023-83 "
            "(approver 'The Intern' is not a release role)",
        ),
    ],
)
def test_vulnerabilities_need_a_fix_or_a_valid_signed_waiver(bench, keys, scratch_source, waiver, status, reason):
    made, allowed = keys
    pin(scratch_source, "starlette==1.10.0", "starlette==0.26.1")
    config = bench.config({"target": {"source": str(scratch_source)}, "signoff": {"allowed_signers": str(allowed)}})
    if isinstance(waiver, tuple):  # signed by the Release Manager, a release role
        sign_waiver(config, made, *waiver)
    elif waiver:
        (scratch_source / "release" / "waivers.toml").write_text(UNSIGNED.format(approver=waiver))
    checked = bench.run(config, "-k", "vulnerabilities")
    assert (checked.status("test_vulnerabilities_addressed"), checked.reason("test_vulnerabilities_addressed")) == (
        status,
        reason,
    )


def test_a_transitive_finding_is_waived_by_its_alias(bench, keys, scratch_source, tmp_path):
    made, allowed = keys
    changes = {
        "target": {"source": str(scratch_source)},
        "signoff": {"allowed_signers": str(allowed)},
        "security": {"dependencies": {"advisories": [str(transitive_advisory(tmp_path))]}},
    }
    config = bench.config(changes)
    sign_waiver(config, made, H11_ALIAS, "2099-01-31")
    checked = bench.run(config, "-k", "vulnerabilities")
    assert checked.status("test_vulnerabilities_addressed") == "waived", checked.reason(
        "test_vulnerabilities_addressed"
    )
    assert re.fullmatch(
        rf"1 finding\(s\) accepted by waiver: {H11_ADVISORY} in transitive h11==\S+",
        checked.reason("test_vulnerabilities_addressed"),
    )


def test_access_controls_fail_when_admin_routes_are_open_to_viewers(bench, faulty):
    checked = bench.run(bench.config(target=faulty(admin_open_to_viewers=True)), "-k", "access_controls")
    assert checked.status("test_access_controls") == "fail"
    reason = checked.reason("test_access_controls")
    assert "GET /v1/admin/audit as viewer: expected 403, got 200" in reason


def test_a_server_error_makes_no_access_decision_so_access_is_not_verified(bench, faulty):
    """Reading a chart back answers 500 for every role: that is an outage (error rates, critical paths), not an
    access-control finding, so it never fires Security vulnerabilities."""
    checked = bench.run(bench.config(target=faulty(broken_read=True)), "-k", "access_controls")
    assert checked.status("test_access_controls") == "not verified"
    assert "made no access decision: GET /v1/kundli/{chart_id} as" in checked.reason("test_access_controls")


@pytest.mark.parametrize(
    "faults, expected",
    [
        ({"no_security_headers": True}, "missing header X-Content-Type-Options"),
        ({"leak_secret": True}, "contains the API token of role"),
    ],
)
def test_data_protection_fails_on_missing_headers_and_leaked_secrets(bench, faulty, faults, expected):
    checked = bench.run(bench.config(target=faulty(**faults)), "-k", "data_protection")
    assert checked.status("test_data_protection") == "fail"
    assert expected in checked.reason("test_data_protection")
    assert "kst_" not in checked.output and "kst_" not in json.dumps(checked.manifest)


def test_data_protection_fails_on_plaintext_credentials(bench, default_config):
    from relcheck.target.embedded import EmbeddedRuntime

    runtime = EmbeddedRuntime(default_config, faults={"plaintext_tokens": True})
    try:
        target = runtime.start()
        checked = bench.run(
            bench.config(target=target, changes={"security": {"data_protection": {"scan_log": False}}}),
            "-k",
            "data_protection",
        )
    finally:
        runtime.stop()
    assert checked.status("test_data_protection") == "fail"
    assert "api_tokens.token_hash: holds a live API token in plain text" in checked.reason("test_data_protection")


def test_audit_logging_fails_without_audit_rows(bench, faulty):
    checked = bench.run(bench.config(target=faulty(no_audit=True)), "-k", "audit_logging")
    assert checked.status("test_audit_logging") == "fail"
    assert checked.reason("test_audit_logging").startswith("no audit record of chart.create on")


def test_security_documentation_must_follow_security_code(bench, tmp_path):
    repo = release_history(tmp_path / "repo", [("Shorter tokens" + REVIEWED, {"app/auth.py": "TOKEN_BYTES = 8\n"})])
    changes = {
        "target": {"repository": str(repo.path), "source": str(repo.path)},
        "security": {"docs": {"sensitive_paths": ["app/auth.py"]}},
    }
    checked = bench.run(bench.config(changes), "-k", "security_documentation")
    assert (
        checked.reason("test_security_documentation")
        == "security-relevant code changed since v1.0.0 (app/auth.py) but SECURITY.md did not"
    )
    (repo.path / "SECURITY.md").write_text("# Security\nTBD\n")
    checked = bench.run(bench.config(changes), "-k", "security_documentation")
    assert "placeholder" in checked.reason("test_security_documentation")


def test_a_reporting_contact_written_against_harvesters_is_a_contact():
    """I Hate Money's SECURITY.md: "write an email to bugs-ihatemoney “@” antipoul.fr"; words alone are none."""
    pattern = SecurityDocs().contact_pattern
    for named in ("security@example.org", "bugs-ihatemoney “@” antipoul.fr", "sec [at] example.org", "https://x.org/s"):
        assert re.search(pattern, f"write to {named} please"), named
    for nothing in ("ping us on IRC", "see the (at) list", "contact: TBD", "a @ b"):
        assert not re.search(pattern, nothing), nothing


# --- Documentation -------------------------------------------------------------------------------------------
def docs_from_release(source, ref: str, *paths: str) -> None:
    """Replace documents with their text at an older release: docs nobody updated."""
    for path in paths:
        text = subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=bundle_clone(), check=True, capture_output=True, text=True
        ).stdout
        (source / path).write_text(text)


_clone = {}


def bundle_clone():
    if "path" not in _clone:
        import tempfile

        path = tempfile.mkdtemp(prefix="relcheck-test-bundle-")
        subprocess.run(["git", "clone", "-q", str(REPO / "examples" / "kundli-service.bundle"), path], check=True)
        _clone["path"] = path
    return _clone["path"]


def test_documentation_left_at_the_previous_release_fails(bench, healthy, scratch_source):
    docs_from_release(
        scratch_source,
        "v1.0.0",
        "docs/openapi.json",
        "docs/deployment.md",
        "docs/configuration.md",
        "docs/troubleshooting.md",
    )
    checked = bench.run(
        bench.config({"target": {"source": str(scratch_source)}}, target=healthy), "-m", "documentation"
    )
    reason = checked.reason("test_api_documentation")
    assert reason.startswith("docs/openapi.json differs from the served API in ")
    assert "POST /v1/compatibility/reports operation: served but not documented" in reason
    table = next(b for b in checked.evidence("test_api_documentation") if b["title"].startswith("Differences"))
    assert [
        "GET /v1/kundli/{chart_id}",
        "response 200",
        "property ayanamsa missing from the committed document",
    ] in table["rows"]
    assert (
        checked.reason("test_deployment_guide") == "docs/deployment.md does not name: release version, "
        "migration head, command: git checkout v1.1.0, command: # head: 0002"
    )
    assert (
        checked.reason("test_configuration_guide")
        == "setting(s) read by the code but not documented: KUNDLI_DEFAULT_AYANAMSA"
    )
    assert checked.reason("test_troubleshooting_guide").endswith("does not explain: REPORT_NOT_FOUND")
    assert checked.status("test_technical_documentation") == "pass"


def test_technical_documentation_incomplete(bench, scratch_source):
    (scratch_source / "docs" / "api.md").unlink()
    (scratch_source / "docs" / "overview.md").write_text("# Overview\nTODO: describe the cache\n[model](model.md)\n")
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}), "-k", "technical_documentation")
    reason = checked.reason("test_technical_documentation")
    assert (
        reason == "6 problem(s): README.md: broken link: docs/api.md; docs/overview.md: line 2: placeholder "
        "TODO: TODO: describe the cache; docs/overview.md: broken link: model.md; docs/api.md: missing"
    )


def test_release_notes_need_a_dated_section_with_entries(bench, scratch_source):
    changelog = scratch_source / "CHANGELOG.md"
    changelog.write_text(changelog.read_text().replace("## [1.1.0] - 2026-11-20", "## [1.1.0] - unreleased"))
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}), "-k", "release_notes")
    assert checked.reason("test_release_notes") == "the 1.1.0 section has no release date"
    changelog.write_text("# Changelog\n\n## [1.0.0] - 2026-09-14\n- first\n")
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}), "-k", "release_notes")
    assert checked.reason("test_release_notes") == "CHANGELOG.md has no section for 1.1.0"


def test_configuration_guide_must_not_document_removed_settings(bench, scratch_source):
    guide = scratch_source / "docs" / "configuration.md"
    guide.write_text(guide.read_text() + "\n| `KUNDLI_LEGACY_MODE` | `0` | removed in 1.0 |\n")
    checked = bench.run(bench.config({"target": {"source": str(scratch_source)}}), "-k", "configuration_guide")
    assert (
        checked.reason("test_configuration_guide")
        == "setting(s) documented but no longer read by the code: KUNDLI_LEGACY_MODE"
    )


def test_an_https_target_behind_a_tls_proxy(bench, healthy, tmp_path):
    """A real deployment's shape: TLS terminated in front of the service. Certificate, protocol and HSTS are
    checked over https; a proxy that does not tell the service the request was https loses HSTS."""
    cert, key = self_signed_certificate(tmp_path)
    bench.env["REQUESTS_CA_BUNDLE"] = cert  # the organisation's CA, for every request the suite makes
    for forwarded, expected in ((True, "pass"), (False, "fail")):
        proxy = TlsProxy(healthy.base_url, cert, key, forwarded_proto=forwarded)
        try:
            config = bench.config(
                {"target": {"base_url": proxy.url}, "security": {"data_protection": {"ca_file": cert}}}, target=healthy
            )
            checked = bench.run(config, "-k", "data_protection or health_checks")
        finally:
            proxy.close()
        assert checked.status("test_health_checks[post_deploy]") == "pass"
        assert checked.status("test_data_protection") == expected, checked.reason("test_data_protection")
    scope = checked.facts("test_data_protection", "Scope")
    assert scope["protocol"] in ("TLSv1.2", "TLSv1.3") and scope["TLSv1.1 refused"] == "yes"
    assert "missing header Strict-Transport-Security on https" in checked.reason("test_data_protection")


def test_vulnerabilities_addressed_needs_a_completed_audit(bench, healthy):
    config = bench.config({"security": {"dependencies": {"advisories": [], "pip_audit": "off"}}}, target=healthy)
    checked = bench.run(config, "-k", "vulnerabilities_addressed")
    assert checked.status("test_vulnerabilities_addressed") == "not verified"
    assert checked.reason("test_vulnerabilities_addressed") == (
        "the dependency audit is not complete: no advisory source answered with PyPI data"
    )


def edited_openapi(edit) -> str:
    """The reference service's committed OpenAPI document with one edit, as text."""
    document = json.loads((REPO / "examples" / "kundli-service" / "docs" / "openapi.json").read_text())
    edit(document["components"]["schemas"], document)
    return json.dumps(document, indent=2)


def rename_planets(schemas, _):
    chart = schemas["ChartOut"]
    chart["properties"]["planet_list"] = chart["properties"].pop("planets")
    chart["required"] = ["planet_list" if name == "planets" else name for name in chart["required"]]


def test_api_documentation_compares_schemas_with_the_served_document(bench, healthy, scratch_source):
    def edit(schemas, document):
        rename_planets(schemas, document)
        schemas["ChartOut"]["properties"]["id"]["type"] = "string"
        del document["paths"]["/v1/auth/token"]["delete"]["security"]

    (scratch_source / "docs" / "openapi.json").write_text(edited_openapi(edit))
    config = bench.config({"target": {"source": str(scratch_source)}}, target=healthy)
    checked = bench.run(config, "-k", "api_documentation")
    assert checked.status("test_api_documentation") == "fail"
    assert checked.reason("test_api_documentation").startswith(
        "docs/openapi.json differs from the served API in 7 place(s): "
        "DELETE /v1/auth/token security: committed none; served HTTPBearer; "
        "GET /v1/kundli/{chart_id} response 200: property id type: committed string, served integer"
    )
    table = next(b for b in checked.evidence("test_api_documentation") if b["title"].startswith("Differences"))
    assert [
        "POST /v1/kundli",
        "response 201",
        "property planets missing from the committed document",
    ] in table["rows"]
    (scratch_source / "docs" / "openapi.json").write_text('{"openapi": "3.1.0", "paths": ')
    checked = bench.run(config, "-k", "api_documentation")
    assert checked.status("test_api_documentation") == "not verified"
    assert checked.reason("test_api_documentation").startswith("docs.openapi_file (docs/openapi.json) does not parse")


def test_a_breaking_change_against_the_previous_release_fails_unless_the_api_version_moves_or_notes_name_it(
    bench, healthy, tmp_path, scratch_source
):
    """The previous release's committed document (its tag in target.repository) against the served one."""
    checked = bench.run(bench.config(target=healthy), "-k", "api_documentation")  # the reference's own history
    assert checked.status("test_api_documentation") == "pass", checked.reason("test_api_documentation")
    changes = next(b for b in checked.evidence("test_api_documentation") if b["title"] == "Changes against 1.0.0")
    assert ["POST /v1/compatibility/reports", "operation", "added", "additive"] in changes["rows"]
    assert {row[3] for row in changes["rows"]} == {"additive"}

    history = Repo(tmp_path / "history")

    def previous(text: str) -> dict:
        history.commit("previous release", {"docs/openapi.json": text})
        history.git("tag", "-f", "-a", "v1.0.0", "-m", "v1.0.0")
        return bench.config({"target": {"repository": str(history.path)}}, target=healthy)

    def nakshatra(schemas, _):
        schemas["ChartOut"]["properties"]["nakshatra"] = {"type": "string"}
        schemas["ChartOut"]["required"].append("nakshatra")

    config = previous(edited_openapi(nakshatra))
    checked = bench.run(config, "-k", "api_documentation")
    assert checked.status("test_api_documentation") == "fail"
    assert checked.reason("test_api_documentation") == (
        "2 breaking change(s) against 1.0.0 without an API version bump or a release-notes entry naming it: "
        "GET /v1/kundli/{chart_id} response 200: property nakshatra removed; "
        "POST /v1/kundli response 201: property nakshatra removed"
    )
    changes = next(b for b in checked.evidence("test_api_documentation") if b["title"] == "Changes against 1.0.0")
    assert ["GET /v1/kundli/{chart_id}", "response 200", "property nakshatra removed", "breaking"] in changes["rows"]
    warned = bench.run(
        bench.config(
            {"target": {"repository": str(history.path)}, "docs": {"api": {"breaking": "warn"}}},
            target=healthy,
            name="warn.toml",
        ),
        "-k",
        "api_documentation",
    )
    assert warned.status("test_api_documentation") == "warn"
    changelog = scratch_source / "CHANGELOG.md"
    entry = "## [1.1.0] - 2026-11-20\n- Removed `nakshatra` from charts\n"
    changelog.write_text(changelog.read_text().replace("## [1.1.0] - 2026-11-20\n", entry))
    announced = {"target": {"repository": str(history.path), "source": str(scratch_source)}}
    checked = bench.run(bench.config(announced, target=healthy, name="notes.toml"), "-k", "api_documentation")
    assert checked.status("test_api_documentation") == "pass", checked.reason("test_api_documentation")
    changes = next(b for b in checked.evidence("test_api_documentation") if b["title"] == "Changes against 1.0.0")
    named = ["POST /v1/kundli", "response 201", "property nakshatra removed", "breaking, named in the release notes"]
    assert named in changes["rows"]

    def major_two(schemas, document):
        nakshatra(schemas, document)
        document["info"]["version"] = "0.9.0"

    checked = bench.run(previous(edited_openapi(major_two)), "-k", "api_documentation")
    assert checked.status("test_api_documentation") == "pass", checked.reason("test_api_documentation")

    def without_ayanamsa(schemas, _):  # this release adds it: additive
        schemas["ChartOut"]["properties"].pop("ayanamsa")
        schemas["ChartOut"]["required"].remove("ayanamsa")

    checked = bench.run(previous(edited_openapi(without_ayanamsa)), "-k", "api_documentation")
    assert checked.status("test_api_documentation") == "pass", checked.reason("test_api_documentation")

    checked = bench.run(previous("{broken"), "-k", "api_documentation")
    assert checked.status("test_api_documentation") == "not verified"
    assert checked.reason("test_api_documentation").startswith(
        "breaking changes not judged: docs.openapi_file (docs/openapi.json) of 1.0.0 does not parse"
    )
