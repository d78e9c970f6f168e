"""Pre-Release Verification / Code Quality."""

import pytest

pytestmark = pytest.mark.code_quality


@pytest.mark.item("Code Quality", "All tests passing")
def test_all_tests_passing(target_tests, relcheck_config, evidence):
    run = target_tests
    junit = run.junit
    evidence.kv("Test run", {"command": " ".join(run.command), "exit status": run.returncode,
                             "duration": f"{run.duration_s:.1f} s"})
    if junit:
        evidence.kv("Results", {"tests": junit.tests, "passed": junit.passed, "failures": junit.failures,
                                "errors": junit.errors, "skipped": junit.skipped})
        evidence.table("Failing tests", ["test", "kind", "message"],
                       [(f.name, f.kind, f.message) for f in junit.failed])
    if run.error or junit is None:
        evidence.text("Output (tail)", run.output_tail)
    assert not run.error, run.error
    assert junit is not None, f"the test run produced no JUnit results (exit status {run.returncode})"
    assert junit.tests > 0, "no tests ran"
    assert not junit.failed and junit.failures == junit.errors == 0, \
        f"{junit.failures + junit.errors} test(s) failing: {', '.join(f.name for f in junit.failed[:5])}"
    max_skipped = relcheck_config.quality.tests.max_skipped
    assert junit.skipped <= max_skipped, f"{junit.skipped} test(s) skipped (at most {max_skipped} allowed)"
    assert run.returncode == 0, f"the test command exited with status {run.returncode}"


@pytest.mark.item("Code Quality", "Code coverage >95%")
def test_code_coverage(target_tests, relcheck_config, evidence):
    settings = relcheck_config.quality.coverage
    coverage = target_tests.coverage
    assert coverage is not None, "no coverage data: the test run did not produce any"
    evidence.kv("Coverage", {"total": f"{coverage.percent:.2f} %", "branch coverage": coverage.branch,
                             "statements": coverage.statements, "required": f"> {settings.threshold_percent} %"})
    evidence.table("Least covered files", ["file", "coverage %", "missing lines"],
                   [(f.path, f.percent, f.missing_lines) for f in coverage.files[:settings.least_covered]])
    assert coverage.percent > settings.threshold_percent, \
        f"coverage {coverage.percent:.2f} % does not exceed {settings.threshold_percent} %"
