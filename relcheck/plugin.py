"""The pytest plugin: checklist items on checks, phase markers, item statuses, evidence, and the signed-checklist
outputs of a run (HTML report, results manifest, evidence, JUnit XML), written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
from datetime import date
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression

from . import checklist as checklist_module
from . import config as config_module
from . import contacts, history, waivers
from . import results as results_module
from .errors import RelcheckError
from .evidence import Evidence, digest
from .files import write_json
from .git import GitRepo
from .report import render
from .results import CheckResult
from .secrets import redact
from .verdict import NotVerified, Pending, Status

PRE_RELEASE_PARTS = ("code_quality", "performance", "security", "documentation")
PHASES = ("pre_release",) + PRE_RELEASE_PARTS + ("pre_deploy", "deploy", "post_deploy", "rollback", "post_rollback",
                                                 "monitoring", "signoff", "post_release")
# When each phase's checks run in a release's life: a rollback trigger only waits for checks already due.
LIFECYCLE = ("pre_release", "pre_deploy", "post_deploy", "post_rollback", "monitoring", "post_release")
CHECKS_DIR = config_module.REPO / "checks"
ROLLBACK_EXIT = 3        # the post-deploy decision is ROLLBACK
CONFIG_KEY = pytest.StashKey[config_module.Config]()
RUN_KEY = pytest.StashKey["Run"]()
ITEMS_KEY = pytest.StashKey[list]()
EVIDENCE_KEY = pytest.StashKey[Evidence]()
SETUP_KEY = pytest.StashKey[float]()


def pytest_addoption(parser):
    group = parser.getgroup("relcheck")
    group.addoption("--relcheck-config", metavar="PATH", default=None,
                    help="relcheck config file (default: $RELCHECK_CONFIG or ./relcheck.toml)")
    group.addoption("--relcheck-reports", metavar="DIR", default=None,
                    help="write this run's report, manifest and JUnit XML into DIR")


def is_checklist_run(config) -> bool:
    """True when the session runs checks/ (the checklist), not the suite's own tests."""
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (base / arg.split("::", 1)[0]).resolve()
        if path == CHECKS_DIR or CHECKS_DIR in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if not is_checklist_run(config):
        return
    try:
        cfg = config_module.load(config.getoption("relcheck_config"))
        checklist = checklist_module.load(cfg.checklist and str(cfg.resolve(cfg.checklist)) or None)
    except (config_module.ConfigError, checklist_module.ChecklistError, OSError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[CONFIG_KEY] = cfg
    run = Run(config, cfg, checklist, outputs=not config.option.collectonly)
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(run, "relcheck-run")
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run_label(markexpr: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "-", markexpr.strip()).strip("-") or "all"


def run_phases(markexpr: str) -> set[str]:
    """The phases a -m expression selects (a sub-phase also carries pre_release)."""
    if not markexpr:
        return set(PHASES)
    expression = Expression.compile(markexpr)
    selected = set()
    for phase in PHASES:
        markers = {phase, "pre_release"} if phase in PRE_RELEASE_PARTS else {phase}
        if expression.evaluate(lambda name, **kwargs: name in markers):
            selected.add(phase)
    return selected


class Run:
    """Collects every check's outcome and writes the run's outputs."""

    def __init__(self, pytest_config, cfg: config_module.Config, checklist, outputs: bool = True) -> None:
        self.pytest_config = pytest_config
        self.cfg = cfg
        self.checklist = checklist
        self.outputs = outputs
        self.markexpr = pytest_config.getoption("markexpr") or ""
        self.label = run_label(self.markexpr)
        self.checks: dict[str, list[CheckResult]] = {}
        self.covered: set[str] = set()
        self.phases_of: dict[str, set[str]] = {}     # every collected check (selected or not) -> its phases
        try:
            self.item_waivers = [w for w in waivers.load_for(cfg) if w.item]
        except (RelcheckError, NotVerified):
            self.item_waivers = []          # the Vulnerabilities addressed check reports the waivers file's problem
        if outputs:
            self._prepare_outputs(pytest_config, cfg)

    def _prepare_outputs(self, pytest_config, cfg) -> None:
        reports = pytest_config.getoption("relcheck_reports")
        self.dir = Path(reports).resolve() if reports else cfg.reports_dir / cfg.release.release_id / self.label
        self.html_final = Path(pytest_config.getoption("htmlpath") or self.dir / "report.html").resolve()
        self.dir = self.html_final.parent if pytest_config.getoption("htmlpath") else self.dir
        self.junit_final = Path(pytest_config.option.xmlpath or self.dir / "junit.xml").resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.html_partial = self.html_final.with_name(f".{self.html_final.name}.partial")
        self.junit_partial = self.junit_final.with_name(f".{self.junit_final.name}.partial")
        pytest_config.option.htmlpath = str(self.html_partial)
        pytest_config.option.self_contained_html = True
        pytest_config.option.xmlpath = str(self.junit_partial)
        self.started = results_module.now()
        self.summary_html = ""
        self.verdict = ""
        self.reasons: list[str] = []
        self.target_facts: dict = {"mode": cfg.target.mode}

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
        # Rollback triggers judge the other checks' results: they run last, and only those this run observes (one
        # of their checks belongs to its phases: a monitoring run does not re-decide on the pre-release scans).
        triggers = [t for t in items if any(i.kind == "trigger" for i in t.stash.get(ITEMS_KEY, []))]
        observed = run_phases(self.markexpr)
        unobserved = [t for t in triggers if not self.observes(t.stash[ITEMS_KEY][0].text, observed)]
        if unobserved:
            config.hook.pytest_deselected(items=unobserved)
        items[:] = [t for t in items if t not in triggers] + [t for t in triggers if t not in unobserved]

    def observes(self, trigger: str, observed: set[str]) -> bool:
        checks = self.cfg.rollback.triggers.get(trigger, [])
        return not checks or any(c not in self.phases_of or self.phases_of[c] & observed for c in checks)

    # --- each check ---------------------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        self.redact_report(report)
        items = item.stash.get(ITEMS_KEY, None)
        if report.when == "setup":
            item.stash[SETUP_KEY] = report.duration     # fixtures (tools, load runs) are part of a check's time
        decisive = report.when == "call" or (report.when == "setup" and not report.passed)
        if not items or not decisive:
            return
        status, reason = self.status_of(report, call, item.stash.get(EVIDENCE_KEY, None))
        reason = redact(reason)
        if status == Status.FAIL:
            status, reason = self.waived(items, reason, report)
        if call.excinfo is not None and call.excinfo.errisinstance((RelcheckError, NotVerified, Pending)):
            report.longrepr = f"{status.value.upper()}: {reason}"
        evidence = item.stash[EVIDENCE_KEY].as_json() if EVIDENCE_KEY in item.stash else []
        phases = sorted(m.name for m in item.iter_markers() if m.name in PHASES)
        duration = report.duration + (item.stash.get(SETUP_KEY, 0.0) if report.when == "call" else 0.0)
        result = CheckResult(item.nodeid, status, reason, duration, phases, evidence, digest(evidence))
        for checklist_item in items:
            self.checks.setdefault(checklist_item.key, []).append(result)
        report.user_properties.append(("relcheck_status", status.value))
        if evidence:
            from pytest_html import extras
            from .evidence import render as render_evidence
            report.extras = getattr(report, "extras", []) + [extras.html(render_evidence(evidence))]

    @staticmethod
    def redact_report(report) -> None:
        """Tracebacks, assertion details and captured output can carry a target's secrets: mask them."""
        if report.longrepr is not None and not isinstance(report.longrepr, tuple):
            report.longrepr = redact(str(report.longrepr))
        report.sections = [(title, redact(text)) for title, text in report.sections]

    def waived(self, items, reason: str, report) -> tuple[Status, str]:
        """A failed item with a valid, signed waiver is WAIVED (and does not fail the run); an expired or
        unapproved waiver is named in the failure."""
        for checklist_item in items:
            waiver = waivers.for_item(self.item_waivers, checklist_item.key)
            if waiver is None:
                continue
            state = waiver.state(date.today())
            if state == "valid":
                report.outcome = "passed"
                return Status.WAIVED, f"waived by {waiver.id} ({waiver.approver}, until {waiver.expires}): " \
                                      f"{waiver.reason}; the check said: {reason}"
            reason = f"{reason} (waiver {waiver.id}: {state})"
        return Status.FAIL, reason

    @staticmethod
    def status_of(report, call, evidence: Evidence | None) -> tuple[Status, str]:
        if report.passed:
            if evidence and evidence.warnings:
                return Status.WARN, evidence.warnings[0]
            if evidence and evidence.waivers:
                return Status.WAIVED, evidence.waivers[0]
            return Status.PASS, ""
        if report.skipped:
            return Status.NOT_VERIFIED, f"skipped: {report.longrepr[2] if isinstance(report.longrepr, tuple) else ''}"
        excinfo = call.excinfo
        reason = first_line(excinfo.value) if excinfo else "failed"
        if excinfo and excinfo.errisinstance(NotVerified):
            return Status.NOT_VERIFIED, reason
        if excinfo and excinfo.errisinstance(Pending):
            return Status.PENDING, reason
        if report.when == "setup":
            return Status.FAIL, f"could not set up: {reason}"
        return Status.FAIL, reason

    # --- the run's outputs --------------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if not self.outputs:
            yield
            return
        self.finish(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)
        if self.verdict == "ROLLBACK":
            session.exitstatus = ROLLBACK_EXIT
        elif self.verdict == "BLOCKED" and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        yield
        for partial, final in ((self.html_partial, self.html_final), (self.junit_partial, self.junit_final)):
            if partial.exists():
                os.replace(partial, final)
        self._silence_writers(session.config)

    @staticmethod
    def _silence_writers(config) -> None:
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

    def finish(self, interrupted: bool) -> None:
        cfg = self.cfg
        results = results_module.item_results(self.checklist, self.checks, self.covered)
        self.verdict, self.reasons = results_module.verdict(results, run_phases(self.markexpr), interrupted)
        decision = results_module.decision(results)
        if decision:
            name, why = decision
            self.verdict = "BLOCKED" if name == "PROCEED" and self.verdict == "BLOCKED" else name
            self.reasons = why + self.reasons
        config_bytes = cfg.path.read_bytes()
        header = {
            "product": cfg.release.product, "release_version": cfg.release.version,
            "release_id": cfg.release.release_id, "release_ref": cfg.release.git_ref,
            "release_sha": self.target_facts.pop("release_sha", "") or self.release_sha(),
            "checklist": {"title": self.checklist.title, "version": self.checklist.version},
            "run": {"label": self.label, "markexpr": self.markexpr, "started": self.started,
                    "finished": results_module.now(), "interrupted": interrupted,
                    "target": self.target_facts, "config_file": cfg.path.name,
                    "config_sha256": hashlib.sha256(config_bytes).hexdigest(),
                    "relcheck_sha": results_module.git_sha(config_module.REPO),
                    "tools": results_module.tool_versions()},
            "contacts": [list(pair) for pair in contacts.of_release(cfg)],
            "files": {"html": self.html_final.name, "evidence": "evidence.json", "junit": self.junit_final.name},
        }
        manifest = results_module.manifest(header, results, self.verdict, self.reasons)
        manifest["trend"] = history.trend(cfg.reports_dir, cfg.release.product, cfg.release.previous_version,
                                          cfg.release.version, self.label, manifest["counts"])
        evidence = {c.nodeid: c.evidence for checks in self.checks.values() for c in checks}
        history.archive_run(self.dir)
        write_json(self.dir / "evidence.json", evidence)
        manifest_sha = write_json(self.dir / "manifest.json", manifest)
        # Rendered from the files as written, exactly as `relcheck verify` re-renders them.
        manifest = json.loads((self.dir / "manifest.json").read_text(encoding="utf-8"))
        evidence = json.loads((self.dir / "evidence.json").read_text(encoding="utf-8"))
        self.summary_html = render(manifest, results_module.from_manifest(manifest, evidence), manifest_sha)

    def due(self, test_name: str) -> bool:
        """Whether a check's phase comes no later in the release than this run's: a post-deploy decision does not
        wait for monitoring checks, a monitoring decision counts everything before it."""
        now = max((LIFECYCLE.index(p) for p in run_phases(self.markexpr) if p in LIFECYCLE), default=0)
        return min((LIFECYCLE.index(p) for p in self.phases_of[test_name] if p in LIFECYCLE), default=0) <= now

    def results_by_test(self) -> dict[str, tuple[str, str]]:
        """This run's results so far: test name (with parameters) -> (status, reason)."""
        return {c.nodeid.split("::")[-1]: (c.status.value, c.reason) for checks in self.checks.values() for c in checks}

    def release_sha(self) -> str:
        try:
            repo = GitRepo(self.cfg.repository)
        except RelcheckError:
            return ""
        try:
            return repo.sha(self.cfg.release.git_ref) if repo.has_ref(self.cfg.release.git_ref) else ""
        finally:
            repo.close()

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
        write(f"report:   {self.html_final}")
        write(f"manifest: {self.dir / 'manifest.json'}")


def first_line(value) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__


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

