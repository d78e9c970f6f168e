"""Pre-Release Verification / Documentation."""

import pytest

from relcheck.core import pointers
from relcheck.core.statuses import require
from relcheck.core.templates import fill
from relcheck.probes import conformance
from relcheck.probes.change import Change, record
from relcheck.probes.docs import (
    completeness,
    document,
    release_notes,
    review_api,
    scan_tree,
    words_in,
)

pytestmark = pytest.mark.documentation


@pytest.mark.item("Pre-Release Verification / Documentation", "API documentation updated")
def test_api_documentation(
    relcheck_config, served_contract, committed_contract, previous_contract, announced_in_notes, evidence
):
    docs = relcheck_config.docs
    assert committed_contract is not None, f"{docs.openapi_file} does not exist"
    previous = previous_contract
    review = review_api(
        committed_contract, served_contract, previous.contract, docs.api.version_prefix, announced_in_notes
    )
    evidence.kv(
        "Contract",
        {
            "committed": docs.openapi_file,
            "live": relcheck_config.target.routes.openapi,
            "operations served": len(served_contract.operations),
            "differences": len(review.drift),
            f"breaking changes against {previous.release}": "not compared"
            if review.changes is None
            else len(review.breaking),
            "API version bump": review.bump or "none",
        },
    )
    evidence.table("Differences (committed vs served)", ["operation", "where", "difference"], review.drift_rows)
    if review.changes is None:
        record(evidence, "Breaking changes", previous.release, Change(missing=previous.missing))
    else:
        evidence.table(
            f"Changes against {previous.release}", ["operation", "where", "change", "kind"], review.change_rows
        )
        record(
            evidence,
            "Breaking changes",
            previous.release,
            Change(review.breaking_labels),
        )
    assert not review.drift, (
        f"{docs.openapi_file} differs from the served API in {len(review.drift)} place(s): "
        + "; ".join(review.drift_labels[:3])
    )
    require(review.changes is not None or not previous.expected, f"breaking changes not judged: {previous.missing}")
    if review.unannounced and not review.bump:
        message = (
            f"{len(review.unannounced)} breaking change(s) against {previous.release} without an API version bump "
            "or a release-notes entry naming it: " + "; ".join(review.unannounced_labels[:3])
        )
        assert docs.api.breaking == "warn", message
        evidence.warn(message + " (docs.api.breaking = warn)")


@pytest.mark.item("Pre-Release Verification / Documentation", "API documentation updated")
def test_api_conformance(api_conformance, api_plan, evidence):
    run = api_conformance
    failures = run.failures_of(conformance.ACCESS_CHECKS, exclude=True)
    evidence.kv("Conformance run (Schemathesis)", run.facts(api_plan))
    evidence.table("Conformance failures", conformance.HEADERS, conformance.rows(failures))
    evidence.table("Not tried", ["operation"], [(op,) for op in run.untried])
    assert not failures, f"{len(failures)} conformance failure(s): {conformance.labels(failures)}"
    require(not run.unjudged, run.unjudged)
    if run.incomplete:
        evidence.warn(run.incomplete)


@pytest.mark.item("Pre-Release Verification / Documentation", "Technical documentation complete")
def test_technical_documentation(relcheck_config, previous_tree, evidence):
    docs = relcheck_config.docs
    problems, checked = completeness(relcheck_config.source, docs.required, docs.placeholders)
    before = previous_tree.findings(lambda tree: completeness(tree, docs.required, docs.placeholders)[0])
    evidence.table(
        "Required documents",
        ["document", "status"],
        [(name, "present" if name in checked else "missing") for name in docs.required],
    )
    evidence.table("Problems", ["document", "problem"], [(p.document, p.problem) for p in problems])
    record(evidence, "Problems", before.release, before.compare(problems))
    assert not problems, f"{len(problems)} problem(s): " + "; ".join(f"{p.document}: {p.problem}" for p in problems[:4])


@pytest.mark.item("Pre-Release Verification / Documentation", "Release notes prepared")
def test_release_notes(relcheck_config, evidence):
    version = relcheck_config.release.version
    changelog = document(relcheck_config.source, relcheck_config.docs.changelog, "changelog")
    assert changelog is not None, f"{relcheck_config.docs.changelog} does not exist"
    notes = release_notes(changelog, version)
    evidence.kv(
        "Release notes",
        {
            "file": relcheck_config.docs.changelog,
            "section": notes.heading or "none",
            "date": notes.date or "none",
            "entries": len(notes.entries),
        },
    )
    evidence.table("Entries", ["entry"], [(e,) for e in notes.entries])
    assert notes.found, f"{relcheck_config.docs.changelog} has no section for {version}"
    assert notes.date, f"the {version} section has no release date"
    assert notes.entries, f"the {version} section lists no changes"


@pytest.mark.item("Pre-Release Verification / Documentation", "Deployment guide updated")
def test_deployment_guide(relcheck_config, release_values, migration_head, evidence):
    docs = relcheck_config.docs
    guide = document(relcheck_config.source, docs.deployment_guide, "deployment_guide")
    assert guide is not None, f"{docs.deployment_guide} does not exist"
    values = {**release_values, "head": migration_head}
    wanted = {"release version": relcheck_config.release.version, "migration head": migration_head}
    wanted.update(
        {
            f"command: {fill(c, values, 'docs.deploy_commands')}": fill(c, values, "docs.deploy_commands")
            for c in docs.deploy_commands
        }
    )
    missing = [what for what, text in wanted.items() if text not in guide]
    evidence.table(
        docs.deployment_guide, ["must name", "found"], [(what, "no" if what in missing else "yes") for what in wanted]
    )
    assert not missing, f"{docs.deployment_guide} does not name: {', '.join(missing)}"


@pytest.mark.item("Pre-Release Verification / Documentation", "Configuration guide updated")
def test_configuration_guide(relcheck_config, evidence):
    docs = relcheck_config.docs
    require(docs.settings_pattern and docs.settings_code_paths, "docs.settings_pattern / settings_code_paths unset")
    guide = document(relcheck_config.source, docs.config_guide, "config_guide")
    assert guide is not None, f"{docs.config_guide} does not exist"
    read_by_code = scan_tree(relcheck_config.source, docs.settings_code_paths, docs.settings_pattern)
    documented = words_in(guide, docs.settings_pattern)
    require(read_by_code, f"no setting matching {docs.settings_pattern!r} found in the code")
    undocumented, stale = sorted(set(read_by_code) - documented), sorted(documented - set(read_by_code))
    evidence.table(
        "Settings",
        ["setting", "read in", "documented"],
        [
            (name, ", ".join(read_by_code.get(name, [])) or "-", "yes" if name in documented else "no")
            for name in sorted(set(read_by_code) | documented)
        ],
    )
    assert not undocumented, f"setting(s) read by the code but not documented: {', '.join(undocumented)}"
    assert not stale, f"setting(s) documented but no longer read by the code: {', '.join(stale)}"


@pytest.mark.item("Pre-Release Verification / Documentation", "Troubleshooting guide updated")
def test_troubleshooting_guide(relcheck_config, live_openapi, evidence):
    docs = relcheck_config.docs
    require(docs.error_codes_pointer, "docs.error_codes_pointer is not configured")
    guide = document(relcheck_config.source, docs.troubleshooting_guide, "troubleshooting_guide")
    assert guide is not None, f"{docs.troubleshooting_guide} does not exist"
    try:
        codes = list(pointers.resolve(live_openapi, docs.error_codes_pointer))
    except (KeyError, IndexError, TypeError):
        raise AssertionError(f"the served OpenAPI has nothing at {docs.error_codes_pointer}") from None
    require(codes, "the service declares no error codes")
    missing = [code for code in codes if not words_in(guide, rf"\b{code}\b")]
    evidence.table("Error codes", ["code", "documented"], [(c, "no" if c in missing else "yes") for c in codes])
    assert not missing, (
        f"error code(s) the service can return but {docs.troubleshooting_guide} does not explain: " + ", ".join(missing)
    )
