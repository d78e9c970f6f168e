"""The pytest plugin (pytest11 entry point `relcheck`), wiring only: when a session runs the checklist it loads the
config, registers the fixtures, ties each check to its checklist item, turns each outcome into a status
(relcheck.run.outcome) and writes the run's outputs when it ends (relcheck.run.outputs)."""

from __future__ import annotations

import importlib
import os
import signal
from datetime import date
from pathlib import Path

import pytest

from relcheck.core import checklist as checklist_module
from relcheck.core import config as config_module
from relcheck.core import records
from relcheck.core.errors import RelcheckError
from relcheck.core.evidence import Evidence, digest
from relcheck.core.secrets import redact
from relcheck.core.statuses import NotVerified, Pending, Status, Verdict, require
from relcheck.run import completeness, outcome, outputs, triggers
from relcheck.run import results as results_module
from relcheck.run.phases import PHASES, PRE_RELEASE_PARTS, is_due, observes, run_label, run_phases, selects
from relcheck.run.results import CheckResult
from relcheck.signing import waivers

# relcheck status -> pytest's (category, letter, word) for the terminal and its summary line
TERMINAL_STATUS = {
    Status.NOT_VERIFIED.value: ("not verified", "N", "NOT VERIFIED"),
    Status.PENDING.value: ("pending", "P", "PENDING"),
    Status.WARN.value: ("warned", "W", "WARN"),
    Status.WAIVED.value: ("waived", "V", "WAIVED"),
}
CHECKS_DIR = Path(importlib.import_module("relcheck.checks").__path__[0]).resolve()
FIXTURES = (
    "target",
    "quality",
    "security",
    "docs",
    "performance",
    "deployment",
    "signoff",
    "monitoring",
    "postrelease",
    "notices",
)
MARKERS = (
    "item(section, item): the checklist item this check proves",
    "pre_release: pre-release verification (the CI gate)",
    "code_quality: Pre-Release Verification / Code Quality (implies pre_release)",
    "performance: Pre-Release Verification / Performance Verification (implies pre_release)",
    "security: Pre-Release Verification / Security Checks (implies pre_release)",
    "documentation: Pre-Release Verification / Documentation (implies pre_release)",
    "pre_deploy: Deployment Procedure / Pre-Deployment",
    "deploy: Deployment Procedure / Deployment Steps",
    "post_deploy: Deployment Procedure / Post-Deployment (the ops smoke)",
    "rollback: Rollback Procedure / Rollback Triggers and Steps",
    "post_rollback: Rollback Procedure / Post-Rollback",
    "monitoring: Monitoring",
    "signoff: Release Sign-off",
    "post_release: Post-Release Tasks",
    "slow: a slow test of the suite itself",
)  # registered wherever the plugin loads, so --strict-markers holds in any project
ROLLBACK_EXIT = 3  # the decision is ROLLBACK
CONFIG_KEY = pytest.StashKey[config_module.Config]()
RUN_KEY = pytest.StashKey["Run"]()
ITEMS_KEY = pytest.StashKey[list]()
EVIDENCE_KEY = pytest.StashKey[Evidence]()
SETUP_KEY = pytest.StashKey[float]()


def pytest_addoption(parser):
    group = parser.getgroup("relcheck")
    group.addoption(
        "--relcheck-config",
        metavar="PATH",
        default=None,
        help="relcheck config file (default: $RELCHECK_CONFIG or ./relcheck.toml)",
    )
    group.addoption(
        "--relcheck-reports",
        metavar="DIR",
        default=None,
        help="write this run's report, manifest and JUnit XML into DIR",
    )


def arg_path(config, arg: str) -> Path:
    return (Path(config.invocation_params.dir) / arg.split("::", 1)[0]).resolve()


def is_checklist_run(config) -> bool:
    """True when the session runs the checklist (checks/), not some other test suite."""
    return any(arg_path(config, a) == CHECKS_DIR or CHECKS_DIR in arg_path(config, a).parents for a in config.args)


def is_whole_checklist(config, arg: str) -> bool:
    return "::" not in arg and arg_path(config, arg) == CHECKS_DIR


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    if not is_checklist_run(config):
        return
    try:
        cfg = config_module.load(config.getoption("relcheck_config"))
        checklist = checklist_module.load(cfg.checklist and str(cfg.resolve(cfg.checklist)) or None)
    except (config_module.ConfigError, checklist_module.ChecklistError, OSError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[CONFIG_KEY] = cfg
    for name in FIXTURES:
        config.pluginmanager.import_plugin(f"relcheck.fixtures.{name}")
    run = Run(config, cfg, checklist, outputs=not config.option.collectonly)
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(run, "relcheck-run")
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


class Run:
    """One checklist run: every check's result as it comes, and the outputs at the end."""

    def __init__(self, pytest_config, cfg: config_module.Config, checklist, outputs: bool = True) -> None:
        self.cfg, self.checklist, self.outputs = cfg, checklist, outputs
        self.markexpr = pytest_config.getoption("markexpr") or ""
        self.label = run_label(self.markexpr)
        self.checks: dict[str, list[CheckResult]] = {}
        self.covered: set[str] = set()
        self.phases_of: dict[str, set[str]] = {}  # every collected check (selected or not) -> its phases
        self.expected: set[str] = set()  # the checks of the run's phases, before -k, --deselect ...
        self.selection = completeness.Selection(
            narrowed_to=[a for a in pytest_config.args if not is_whole_checklist(pytest_config, a)],
            keyword=pytest_config.getoption("keyword") or "",
            deselected=list(pytest_config.getoption("deselect") or []),
            last_failed=bool(
                getattr(pytest_config.option, "lf", False) or getattr(pytest_config.option, "failedfirst", 0)
            ),
        )
        self.target_facts: dict = {"mode": cfg.target.mode}
        self.started = results_module.now()
        self.verdict, self.summary_html = "", ""
        self.reasons: list[str] = []
        try:
            self.item_waivers = [w for w in waivers.load_for(cfg) if w.item]
        except (RelcheckError, NotVerified):
            self.item_waivers = []  # the Vulnerabilities addressed check reports the waivers file's problem
        if outputs:
            self.default_paths = not (
                pytest_config.getoption("relcheck_reports") or pytest_config.getoption("htmlpath")
            )
            self.paths = self.configured = outputs_for(pytest_config, cfg, self.label)

    # --- collection ---------------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session, config, items):
        for test in items:
            markers = list(test.iter_markers("item"))
            if not markers and CHECKS_DIR in Path(test.path).parents:
                raise pytest.UsageError(f"{test.nodeid}: a check must name its checklist item (@pytest.mark.item)")
            try:
                resolved = [self.checklist.find(*m.args) for m in markers]
            except checklist_module.ChecklistError as exc:
                raise pytest.UsageError(f"{test.nodeid}: {exc}") from None
            test.stash[ITEMS_KEY] = resolved
            self.covered.update(item.key for item in resolved)
            sub_phase = any(test.get_closest_marker(p) for p in PRE_RELEASE_PARTS)
            if sub_phase and not test.get_closest_marker("pre_release"):
                test.add_marker("pre_release")
            self.phases_of[test.nodeid.split("::")[-1]] = {m.name for m in test.iter_markers() if m.name in PHASES}
        # Rollback triggers judge the other checks' results: they run last, and only those this run observes.
        triggers = [t for t in items if any(i.kind == "trigger" for i in t.stash.get(ITEMS_KEY, []))]
        selected = run_phases(self.markexpr)
        mapped = self.cfg.rollback.triggers
        unobserved = [
            t for t in triggers if not observes(mapped.get(t.stash[ITEMS_KEY][0].text, []), self.phases_of, selected)
        ]
        if unobserved:
            config.hook.pytest_deselected(items=unobserved)
        self.expected = {
            t.nodeid
            for t in items
            if t not in unobserved and selects(self.markexpr, {m.name for m in t.iter_markers()})
        }
        items[:] = [t for t in items if t not in triggers] + [t for t in triggers if t not in unobserved]

    def pytest_collectreport(self, report):
        if report.failed:
            self.selection.collection_errors.append(report.nodeid or "the checklist")

    # --- each check ---------------------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        redact_report(report)
        items = item.stash.get(ITEMS_KEY, None)
        if report.when == "setup":
            item.stash[SETUP_KEY] = report.duration  # fixtures (tools, load runs) are part of a check's time
        if not items or not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return
        error = call.excinfo.value if call.excinfo is not None else None
        skip_reason = report.longrepr[2] if report.skipped and isinstance(report.longrepr, tuple) else ""
        status, reason = outcome.status_of(
            report.passed, report.skipped, report.when, error, skip_reason, item.stash.get(EVIDENCE_KEY, None)
        )
        reason = redact(reason)
        if status == Status.FAIL:
            status, reason = outcome.waived(self.item_waivers, [i.key for i in items], reason, date.today())
            if status == Status.WAIVED:
                report.outcome = "passed"
        if isinstance(error, (RelcheckError, NotVerified, Pending)):
            report.longrepr = f"{status.value.upper()}: {reason}"
        recorded = item.stash.get(EVIDENCE_KEY, None)
        evidence = recorded.as_json() if recorded else []
        pre_existing = recorded.pre_existing if recorded and status == Status.FAIL else ""
        phases = sorted(m.name for m in item.iter_markers() if m.name in PHASES)
        duration = report.duration + (item.stash.get(SETUP_KEY, 0.0) if report.when == "call" else 0.0)
        result = CheckResult(item.nodeid, status, reason, duration, phases, evidence, digest(evidence), pre_existing)
        for checklist_item in items:
            self.checks.setdefault(checklist_item.key, []).append(result)
        report.user_properties.append(("relcheck_status", status.value))
        if evidence:
            from pytest_html import extras

            from relcheck.core.evidence import render as render_evidence

            report.extras = getattr(report, "extras", []) + [extras.html(render_evidence(evidence))]

    # --- what the trigger checks ask of the run ----------------------------------------------------------
    def due(self, test_name: str) -> bool:
        return is_due(self.phases_of[test_name], run_phases(self.markexpr))

    def results_by_test(self) -> dict[str, dict]:
        """This run's results so far: test name (with parameters) -> {"status", "reason", "pre_existing"}."""
        return {
            c.nodeid.split("::")[-1]: {"status": c.status.value, "reason": c.reason, "pre_existing": c.pre_existing}
            for checks in self.checks.values()
            for c in checks
        }

    def judge_trigger(self, trigger: str) -> triggers.Judgement:
        """A rollback trigger's mapped checks, judged from this run and the release's earlier complete runs."""
        mapped = self.cfg.rollback.triggers.get(trigger, [])
        require(mapped, f"no checks mapped to {trigger!r} (rollback.triggers)")
        unknown = [check for check in mapped if check not in self.phases_of]
        require(not unknown, f"rollback.triggers names no such check: {', '.join(unknown)}")
        return triggers.evaluate(
            mapped,
            [check for check in mapped if self.due(check)],
            self.results_by_test(),
            records.manifests(self.cfg),
            records.manifests_in(records.previous_release_dir(self.cfg)),
            self.cfg.release.previous_version,
            self.phases_of,
        )

    # --- the run's outputs --------------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if not self.outputs:
            yield
            return
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        ran = {c.nodeid for found in self.checks.values() for c in found}
        partial = completeness.partial_reasons(self.selection, interrupted, self.expected, ran)
        if partial and self.default_paths:
            self.paths = self.paths.beside("-partial")  # never over the phase's complete report
            self.paths.dir.mkdir(parents=True, exist_ok=True)
        header = outputs.header(
            self.cfg,
            self.checklist,
            self.label,
            self.markexpr,
            self.started,
            interrupted,
            self.target_facts,
            self.paths,
            partial,
        )
        written = outputs.write(self.cfg, self.checklist, self.checks, self.covered, self.markexpr, header, self.paths)
        self.verdict, self.reasons, self.summary_html = written.verdict, written.reasons, written.summary_html
        if self.verdict == Verdict.ROLLBACK:
            session.exitstatus = ROLLBACK_EXIT
        elif self.verdict == Verdict.BLOCKED and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        yield
        for being_written, final in (
            (self.configured.html_partial, self.paths.html),
            (self.configured.junit_partial, self.paths.junit),
        ):
            if being_written.exists():
                os.replace(being_written, final)
        silence_writers(session.config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report, config):
        """The terminal says what the manifest says: NOT VERIFIED, PENDING, WARN and WAIVED are not FAILED/PASSED."""
        status = dict(report.user_properties).get("relcheck_status")
        shown = TERMINAL_STATUS.get(status)
        if shown and (report.when == "call" or (report.when == "setup" and not report.passed)):
            return shown
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_metadata(self, metadata):
        """pytest-html's environment table would sit above the verdict; the manifest records the tool versions."""
        metadata.clear()

    def pytest_html_report_title(self, report):
        report.title = f"{self.cfg.release.product} {self.cfg.release.version} release checklist ({self.label})"

    def pytest_html_results_summary(self, prefix, summary, postfix):
        prefix.append(self.summary_html)

    def pytest_html_results_table_row(self, report, cells):
        from html import escape

        cells[1] = f'<td class="col-testId">{escape(report.nodeid)}</td>'

    def pytest_terminal_summary(self, terminalreporter):
        if not self.outputs:
            return
        write = terminalreporter.write_line
        terminalreporter.section("relcheck")
        write(f"verdict: {self.verdict}")
        for reason in self.reasons[:15]:
            write(f"  - {reason}")
        if len(self.reasons) > 15:
            write(f"  ... and {len(self.reasons) - 15} more")
        write(f"report:   {self.paths.html}")
        write(f"manifest: {self.paths.dir / 'manifest.json'}")


def outputs_for(pytest_config, cfg: config_module.Config, label: str) -> outputs.OutputPaths:
    """The run's paths; pytest-html and junitxml write to partial names that the run moves into place at the end."""
    paths = outputs.output_paths(
        cfg,
        label,
        pytest_config.getoption("relcheck_reports"),
        pytest_config.getoption("htmlpath"),
        pytest_config.option.xmlpath,
    )
    paths.dir.mkdir(parents=True, exist_ok=True)
    pytest_config.option.htmlpath = str(paths.html_partial)
    pytest_config.option.self_contained_html = True
    pytest_config.option.xmlpath = str(paths.junit_partial)
    return paths


def redact_report(report) -> None:
    """Tracebacks, assertion details and captured output can carry a target's secrets: mask them."""
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        report.longrepr = redact(str(report.longrepr))
    report.sections = [(title, redact(text)) for title, text in report.sections]


def silence_writers(config) -> None:
    """pytest-html and junitxml would announce the partial files; our summary names the final ones."""
    from _pytest.junitxml import xml_key
    from pytest_html.basereport import BaseReport

    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, BaseReport):
            config.pluginmanager.unregister(plugin)
    xml = config.stash.get(xml_key, None)
    if xml:
        del config.stash[xml_key]
        config.pluginmanager.unregister(xml)


@pytest.fixture
def evidence(request) -> Evidence:
    """Evidence for the current check's item, shown (escaped) in the report."""
    recorded = Evidence()
    request.node.stash[EVIDENCE_KEY] = recorded
    return recorded


@pytest.fixture(scope="session")
def relcheck_config(pytestconfig) -> config_module.Config:
    if CONFIG_KEY not in pytestconfig.stash:
        pytest.skip("not a checklist run (no relcheck config loaded)")
    return pytestconfig.stash[CONFIG_KEY]


@pytest.fixture(scope="session")
def relcheck_run(pytestconfig) -> Run:
    return pytestconfig.stash[RUN_KEY]


@pytest.fixture
def trigger_judgement(relcheck_run):
    """trigger_judgement("Error rate > 5%") -> what its mapped checks say by now (rollback.triggers)."""
    return relcheck_run.judge_trigger


@pytest.fixture(scope="session")
def report_facts(relcheck_run):
    """Record facts about the target for the report's header (like junitxml's record_testsuite_property)."""
    return relcheck_run.target_facts.update
