"""Pre-Release Verification / Code Quality."""

import pytest

from relcheck.core.checklist import figure
from relcheck.core.statuses import require
from relcheck.probes.change import record
from relcheck.probes.docs import release_notes
from relcheck.probes.review import matching

pytestmark = pytest.mark.code_quality
ITEM_FIGURE = figure("Code coverage >95%")


@pytest.mark.item("Code Quality", "All tests passing")
def test_all_tests_passing(target_tests, relcheck_config, evidence):
    run = target_tests
    junit = run.junit
    evidence.kv(
        "Test run",
        {"command": " ".join(run.command), "exit status": run.returncode, "duration": f"{run.duration_s:.1f} s"},
    )
    if junit:
        evidence.kv(
            "Results",
            {
                "tests": junit.tests,
                "passed": junit.passed,
                "failures": junit.failures,
                "errors": junit.errors,
                "skipped": junit.skipped,
            },
        )
        evidence.table(
            "Failing tests", ["test", "kind", "message"], [(f.name, f.kind, f.message) for f in junit.failed]
        )
        evidence.table("Skipped tests", ["test", "reason"], [(s.name, s.message) for s in junit.skips])
    if run.error or junit is None:
        evidence.text("Output (tail)", run.output_tail)
    evidence.kv(
        "Isolation",
        {
            "scratch database": run.scratch or "none configured",
            "left there by the tests": run.scratch_effect or "nothing",
            "live schema": "; ".join(run.live_changes) or "unchanged",
            "live writes meanwhile (service traffic included)": run.live_writes or "not measured",
        },
    )
    assert not run.live_changes, f"the live database changed during the test run: {'; '.join(run.live_changes)}"
    unused = (
        f"the tests did not use the scratch database {run.scratch} (no tables or rows there)"
        if run.scratch and not run.scratch_effect
        else ""
    )
    first = run.first_problem()
    require(not run.error, run.error)  # the tests did not run: no evidence either way
    require(
        junit is not None or run.returncode != 0,
        "the test command exited 0 but wrote no JUnit results (quality.tests.junit_option)",
    )
    assert junit is not None, f"the test run produced no JUnit results (exit status {run.returncode}): {first}"
    assert junit.tests > 0, f"no tests ran: {first}" if first else "no tests ran"
    assert not junit.failed and junit.failures == junit.errors == 0, (
        f"{unused}; " if unused else ""
    ) + f"{junit.failures + junit.errors} test(s) failing, first {first}"
    assert not unused, unused
    max_skipped = relcheck_config.quality.tests.max_skipped
    assert junit.skipped <= max_skipped, f"{junit.skipped} test(s) skipped (at most {max_skipped} allowed)"
    assert run.returncode == 0, f"the test command exited with status {run.returncode}"


@pytest.mark.item("Code Quality", "Code coverage >95%")
def test_code_coverage(target_tests, relcheck_config, evidence):
    settings = relcheck_config.quality.coverage
    require(target_tests.started, f"no coverage measured: the tests did not run ({target_tests.first_problem()})")
    coverage = target_tests.coverage
    require(
        coverage,
        "no coverage data: the test run produced none (quality.coverage.source; coverage.py in quality.tests.python)",
    )
    required = max(settings.threshold_percent, ITEM_FIGURE)  # the item's own figure; less takes a signed waiver
    evidence.kv(
        "Coverage",
        {
            "total": f"{coverage.percent:.2f} %",
            "branch coverage": coverage.branch,
            "statements": coverage.statements,
            "required": f"> {required:g} % (the item's figure; quality.coverage.threshold_percent = "
            f"{settings.threshold_percent:g})",
            "defined by": coverage.definition or "no coverage configuration in the project",
            "left out (quality.coverage.omit)": f"{len(coverage.omitted)} files" if settings.omit else "nothing",
        },
    )
    if coverage.percent_without_them is not None:
        evidence.kv(
            "Test files and migrations measured",
            {
                "files": ", ".join(coverage.tests_and_migrations),
                "total without them": f"{coverage.percent_without_them:.2f} % (quality.coverage.omit leaves them out)",
            },
        )
    evidence.table(
        "Least covered files",
        ["file", "coverage %", "missing lines"],
        [(f.path, f.percent, f.missing_lines) for f in coverage.files[: settings.least_covered]],
    )
    assert coverage.percent > required, f"coverage {coverage.percent:.2f} % does not exceed {required:g} %"


@pytest.mark.item("Code Quality", "No critical bugs")
def test_no_critical_bugs(open_issues, evidence):
    blocking = open_issues.blocking
    evidence.kv(
        "Tracker",
        {
            "source": open_issues.source,
            "blocking labels": ", ".join(open_issues.labels),
            "milestone": f"{open_issues.milestone} (as a version; issues without one count too)"
            if open_issues.milestone
            else "any",
            **({"exported": open_issues.taken} if open_issues.taken else {}),
        },
    )
    evidence.table(
        "Open blocking issues",
        ["#", "title", "labels", "milestone", "link"],
        [
            (i.number, i.title, ", ".join(i.labels), i.milestone or "none: blocks every release", i.url)
            for i in blocking
        ],
    )
    assert not blocking, f"{len(blocking)} open critical issue(s): " + ", ".join(
        f"#{i.number} {i.title}" + ("" if i.milestone else " (no milestone)") for i in blocking[:5]
    )


@pytest.mark.item("Code Quality", "Security scan completed")
def test_security_scan(bandit_scan, bandit_before, relcheck_config, evidence):
    cfg = relcheck_config.security.bandit
    scan = bandit_scan
    require(scan.ran, scan.not_judged)
    gating = [f for f in scan.findings if f.at_least(cfg.severity, cfg.confidence)]
    new = [f for f in gating if not f.in_baseline]
    evidence.kv(
        "bandit",
        {
            "version": scan.version,
            "targets": ", ".join(cfg.targets),
            "files": scan.files,
            "lines": scan.lines,
            "findings": len(scan.findings),
            f"at or above {cfg.severity}/{cfg.confidence}": len(gating),
            "in baseline": sum(f.in_baseline for f in gating),
            "# nosec": scan.nosec,
            "baseline": scan.baseline or "none",
        },
    )
    evidence.table(
        "Findings",
        ["id", "severity", "confidence", "where", "issue", "baseline"],
        [
            (f.test_id, f.severity, f.confidence, f"{f.filename}:{f.line}", f.text, "yes" if f.in_baseline else "no")
            for f in scan.findings
        ],
    )
    require(not scan.not_judged, scan.not_judged)  # the baseline unread: which findings are accepted is unknown
    record(evidence, "Findings at or above the threshold", bandit_before.release, bandit_before.compare(new, gating))
    assert not new, f"{len(new)} new finding(s) at or above {cfg.severity}: " + ", ".join(
        f"{f.test_id} {f.filename}:{f.line}" for f in new[:5]
    )
    require(not scan.scan_errors, f"bandit could not scan: {'; '.join(scan.scan_errors[:3])}")
    require(scan.files > 0, f"bandit scanned no files (security.bandit.targets: {', '.join(cfg.targets)})")


@pytest.mark.item("Code Quality", "Code review completed")
def test_code_review(code_review, release_range, evidence):
    unreviewed = [c for c in code_review if not c.reviewed]
    evidence.kv(
        "History", {"range": "..".join(release_range), "changes": len(code_review), "unreviewed": len(unreviewed)}
    )
    evidence.table(
        "Changes",
        ["commit", "author", "subject", "review"],
        [(c.commit.sha[:10], c.commit.author, c.commit.subject, c.how) for c in code_review],
    )
    require(code_review, f"no changes between {release_range[0]} and {release_range[1]}")
    through_pulls = [c for c in unreviewed if c.pull_request]
    require(
        not through_pulls,
        f"{len(through_pulls)} of {len(code_review)} change(s) came through pull requests whose reviews are not "
        "looked up without quality.review.github (the repository reviews in pull requests, not in trailers)",
    )
    require(
        any(c.has_data for c in code_review),
        "no review data: no change carries a review trailer (quality.review.trailers) and no pull request reviews "
        "were found (quality.review.github)",
    )
    assert not unreviewed, f"{len(unreviewed)} unreviewed change(s): " + ", ".join(
        f"{c.commit.sha[:10]} {c.commit.subject}" for c in unreviewed[:5]
    )


@pytest.mark.item("Code Quality", "Documentation updated")
def test_documentation_updated(release_changes, relcheck_config, release_range, evidence):
    cfg = relcheck_config.quality.docs_follow_code
    require(cfg.code_paths and cfg.doc_paths, "quality.docs_follow_code paths are not configured")
    code, docs_changed = matching(release_changes, cfg.code_paths), matching(release_changes, cfg.doc_paths)
    changelog = relcheck_config.source / relcheck_config.docs.changelog
    notes = release_notes(
        changelog.read_text(encoding="utf-8") if changelog.is_file() else "", relcheck_config.release.version
    )
    evidence.kv(
        "Since " + release_range[0],
        {
            "code files changed": len(code),
            "doc files changed": len(docs_changed),
            "changelog entry": notes.heading or "none",
        },
    )
    evidence.table("Changed documentation", ["file"], [(f,) for f in docs_changed])
    assert notes.found, f"{relcheck_config.docs.changelog} has no entry for {relcheck_config.release.version}"
    assert not code or docs_changed, (
        f"{len(code)} code file(s) changed since {release_range[0]} but no documentation did"
    )
