"""Whether the service behaves as its OpenAPI document says: Schemathesis (its CLI, in a subprocess) against the
served document, with a fixed seed, cases per operation and a time budget; its NDJSON events read into failures
(operation, check, case, a curl reproducer with secrets masked), the operations it tried and its own errors.

    run = conformance.run(plan, document, workdir)
    assert not run.failures_of(conformance.ACCESS_CHECKS, exclude=True)

Writing operations go only to an instance relcheck started on a scratch database; any other service gets the safe
methods (GET, HEAD, OPTIONS) alone. The evidence says which."""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import tomli_w

from relcheck.core.secrets import MASK, redact
from relcheck.probes.loadtest import check_allowed
from relcheck.target.environment import command_env
from relcheck.target.logs import OwnRequest
from relcheck.target.service import die_with_parent, stop_groups

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
ACCESS_CHECKS = frozenset({"ignored_auth", "object_level_authorization"})  # they prove *Access controls verified*
BY = "the conformance run (Schemathesis)"  # in its record of the requests that answered 5xx
AUTH_ENV = "RELCHECK_API_AUTH"  # the auth header's value reaches Schemathesis here, never on its command line


@dataclass(frozen=True)
class Plan:
    """What one run sends, where, and within which budget."""

    base_url: str
    writes: bool  # an instance relcheck started on a scratch database: every method; else the safe ones only
    checks: list[str]
    phases: list[str]
    max_examples: int
    time_budget_s: float
    seed: int
    workers: int
    request_timeout_s: float
    auth_header: str = ""
    auth_value: str = ""  # "Bearer <token>"; "" = no credentials
    exclude: list[str] = field(default_factory=list)  # "METHOD /path" never sent
    parameters: dict[str, str] = field(default_factory=dict)  # "header.x-api-version" -> the value always sent
    rate_limit: str = ""
    allowed_hosts: list[str] = field(default_factory=list)
    instance: str = ""  # which instance relcheck started on a scratch database, for the evidence
    budget_key: str = "quality.api.time_budget_s"  # the key that sets time_budget_s, named when it runs out

    @property
    def scope(self) -> str:
        if self.writes:
            return f"every method: {self.instance or 'an instance relcheck started on a scratch database'}"
        return f"safe methods only ({', '.join(SAFE_METHODS)}): a service relcheck did not start"

    def in_scope(self, operation: str) -> bool:
        return operation not in self.exclude and (self.writes or operation.split(" ", 1)[0] in SAFE_METHODS)

    @property
    def settings(self) -> dict:
        """Schemathesis' config file: the auth header (its value from the environment), the pinned parameters and,
        unless unsupported_method is checked, no requests with methods the document does not declare."""
        settings: dict = {"headers": {self.auth_header: "${" + AUTH_ENV + "}"} if self.auth_value else {}}
        settings["parameters"] = {name: value.replace("${", "$${") for name, value in self.parameters.items()}
        if "unsupported_method" not in self.checks:
            settings["phases"] = {"coverage": {"unexpected-methods": []}}
        return settings

    def command(self, document: Path, config: Path, events: Path) -> list[str]:
        command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", str(document)]
        command += ["--url", self.base_url, "--seed", str(self.seed), "--max-examples", str(self.max_examples)]
        command += ["--phases", ",".join(self.phases), "--checks", ",".join(self.checks)]
        command += ["--workers", str(self.workers), "--request-timeout", f"{self.request_timeout_s:g}"]
        command += ["--report", "ndjson", "--report-ndjson-path", str(events), "--no-color"]
        command += ["--continue-on-failure"]  # a failure ends no operation's cases: the next may show another
        command += ["--generation-database", "none"]  # the same seed gives the same cases, run after run
        if not self.writes:
            command += ["--include-method-regex", f"^({'|'.join(SAFE_METHODS)})$"]
        for operation in self.exclude:
            command += ["--exclude-name", operation]
        if self.rate_limit:
            command += ["--rate-limit", self.rate_limit]
        return command


@dataclass(frozen=True)
class Failure:
    operation: str
    check: str
    problem: str
    case: str  # Schemathesis' case id
    curl: str  # the request that showed it, secrets masked


@dataclass
class Conformance:
    scope: str
    operations: list[str]  # in scope: the document's operations this run may send
    excluded: list[str]  # the document's operations left out (quality.api.exclude, or not safe)
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # Schemathesis' own
    answers: dict[str, set] = field(default_factory=dict)  # operation -> the status codes its cases got
    cases: int = 0
    empty_headers: int = 0  # negative cases only an empty header made, not counted (see _empty_header)
    server_errors: list[OwnRequest] = field(default_factory=list)  # the requests it sent that answered 5xx: the
    #   errors the service logged meanwhile are the run's doing (logs.own_requests), not the release's
    stopped: str = ""  # why the run ended before it finished ("" = it finished)
    seconds: float = 0.0

    @property
    def tried(self) -> set[str]:
        """Operations whose cases got past authentication (all 401/403 tests nothing but the token)."""
        return {op for op, statuses in self.answers.items() if statuses - {401, 403}}

    @property
    def denied(self) -> list[str]:
        return [op for op in self.operations if self.answers.get(op) and op not in self.tried]

    @property
    def untried(self) -> list[str]:
        return [op for op in self.operations if op not in self.tried]

    @property
    def incomplete(self) -> str:
        """Why not every operation in scope was tried to the end ("" = all were), for a warning."""
        if self.stopped:
            untried = f"; not tried: {', '.join(self.untried)}" if self.untried else ""
            return f"{self.stopped}{untried}"
        if self.untried:
            denied = f" ({len(self.denied)} answered only 401/403: check quality.api.role's token)" * bool(self.denied)
            return f"{len(self.untried)} operation(s) not tried: {', '.join(self.untried)}{denied}"
        return ""

    @property
    def unjudged(self) -> str:
        """Why the run proves nothing ("" = it does): Schemathesis' own errors, or no operation tried."""
        if self.errors:
            return "Schemathesis could not test: " + "; ".join(self.errors[:3])
        if not self.tried & set(self.operations):
            return f"no operation was tried: {self.incomplete or 'none in scope'}"
        return ""

    def failures_of(self, checks: frozenset[str], exclude: bool = False) -> list[Failure]:
        """The failures of these checks (exclude=True: of every other check)."""
        return [f for f in self.failures if (f.check in checks) != exclude]

    def facts(self, plan: Plan) -> dict:
        return {
            "scope": self.scope,
            "operations in scope": len(self.operations),
            "operations tried": len(self.tried & set(self.operations)),
            "left out": ", ".join(self.excluded) or "none",
            "parameters sent as configured": ", ".join(f"{k} = {v}" for k, v in plan.parameters.items()) or "none",
            "test cases": self.cases,
            "accepted empty headers (not counted)": self.empty_headers,
            "checks": ", ".join(plan.checks),
            "phases": ", ".join(plan.phases),
            "seed": plan.seed,
            "cases per operation and phase": plan.max_examples,
            "time": f"{self.seconds:.1f}s of {plan.time_budget_s:g}s",
        }


HEADERS = ["operation", "check", "problem", "case", "reproduce"]


def rows(failures: list[Failure]) -> list[tuple[str, str, str, str, str]]:
    return [(f.operation, f.check, f.problem, f.case, f.curl) for f in failures]


def labels(failures: list[Failure], limit: int = 3) -> str:
    return "; ".join(f"{f.operation} {f.check}: {f.problem}" for f in failures[:limit])


def run(plan: Plan, document: dict, operations: list[str], workdir: Path) -> Conformance:
    """Schemathesis over the served `document` (its operations: "METHOD /path"), bounded by the plan's budget.
    ToolError when the target is not an allowed host."""
    check_allowed(plan.base_url, plan.allowed_hosts)
    doc, config, events, output = (workdir / n for n in ("openapi.json", "schemathesis.toml", "events.ndjson", "out"))
    doc.write_text(json.dumps(document))
    config.write_text(tomli_w.dumps(plan.settings))
    ca = {k: os.environ[k] for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE") if k in os.environ}
    env = command_env({**ca, AUTH_ENV: plan.auth_value})
    started = time.monotonic()
    with output.open("w") as out:
        process = subprocess.Popen(
            plan.command(doc, config, events),
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            process.wait(plan.time_budget_s)
            killed = False
        except subprocess.TimeoutExpired:
            killed = True
        finally:
            stop_groups([process])  # also on Ctrl-C: no Schemathesis outlives the run
    found = Conformance(
        plan.scope,
        [op for op in operations if plan.in_scope(op)],
        [op for op in operations if not plan.in_scope(op)],
        seconds=time.monotonic() - started,
    )
    lines = events.read_text(errors="replace").splitlines() if events.is_file() else []
    finished = read_events(found, lines, plan.auth_header)
    if killed:
        found.stopped = f"the time budget ran out ({plan.budget_key} = {plan.time_budget_s:g}) in {finished}"
    elif finished != "finished" and not found.errors:
        last = [line for line in output.read_text(errors="replace").splitlines() if line.strip()]
        found.errors.append(
            f"schemathesis stopped (exit {process.returncode}) before it finished: {redact(last[-1]) if last else ''}"
        )
    return found


def read_events(found: Conformance, lines: list[str], auth_header: str = "") -> str:
    """Schemathesis' NDJSON events into `found`; returns "finished", else the phase the run was in."""
    phase, seen = "its start-up", set()
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:  # the last line of a run that was stopped
            continue
        if not isinstance(event, dict) or not event:
            continue
        kind, body = next(iter(event.items()))
        if kind == "PhaseStarted":
            phase = f"the {body.get('phase', {}).get('name', '?')} phase"
        elif kind == "EngineFinished":
            return "finished"
        elif kind == "FatalError":
            found.errors.append(_error_text(body.get("exception")))
        elif kind == "NonFatalError":
            error = f"{body.get('label', '?')}: {_error_text(body.get('value'))}"
            if error not in found.errors:
                found.errors.append(error)
        elif kind == "ScenarioFinished":
            recorder = body.get("recorder") or {}
            label = recorder.get("label", "?")
            found.server_errors += server_errors(recorder)
            for case_id, checks in (recorder.get("checks") or {}).items():
                if not checks:
                    continue
                found.cases += 1
                interaction = (recorder.get("interactions") or {}).get(case_id) or {}
                status = (interaction.get("response") or {}).get("status_code")
                found.answers.setdefault(label, set()).add(status)
                request = interaction.get("request") or {}
                for check in checks:
                    if check.get("status") != "failure":
                        continue
                    if check.get("name") == "negative_data_rejection" and _empty_header(recorder, case_id, request):
                        found.empty_headers += 1
                        continue
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    problem = " ".join(p for p in (failure.get("title"), _first(failure.get("message"))) if p)
                    if (label, check.get("name"), problem) in seen:
                        continue
                    seen.add((label, check.get("name"), problem))
                    found.failures.append(
                        Failure(label, check.get("name", "?"), redact(problem), case_id, curl(request, auth_header))
                    )
    return phase


def server_errors(recorder: dict) -> list[OwnRequest]:
    """A scenario's requests that were answered 5xx, each with the span it was in flight (Schemathesis stamps an
    interaction when its answer came; the answer's elapsed time goes back to when it was sent)."""
    found = []
    for interaction in (recorder.get("interactions") or {}).values():
        response, request = interaction.get("response") or {}, interaction.get("request") or {}
        status, answered = response.get("status_code"), interaction.get("timestamp")
        if not isinstance(status, int) or status < 500 or not isinstance(answered, (int, float)):
            continue
        elapsed = response.get("elapsed")
        sent = answered - (elapsed if isinstance(elapsed, (int, float)) else 0.0)
        path = urlsplit(str(request.get("uri", ""))).path or "?"
        found.append(OwnRequest(str(request.get("method", "?")), path, status, sent, float(answered), BY))
    return found


def _empty_header(recorder: dict, case_id: str, request: dict) -> bool:
    """Whether a negative case's only violation is a header sent empty: RFC 9110 (5.6.1) has recipients
    accept empty list elements, and servers read an empty conditional header as none, so accepting it breaks
    nothing a client relies on."""
    case = ((recorder.get("cases") or {}).get(case_id) or {}).get("value") or {}
    data = ((case.get("meta") or {}).get("phase") or {}).get("data") or {}
    if data.get("parameter_location") != "header" or not data.get("parameter"):
        return False
    sent = {name.lower(): values for name, values in (request.get("headers") or {}).items()}
    return sent.get(str(data["parameter"]).lower()) in ([""], "")


def curl(request: dict, auth_header: str = "") -> str:
    """A curl command repeating a recorded request, with the auth header's value and known secrets masked."""
    if not request.get("uri"):
        return ""
    parts = ["curl", "-X", request.get("method", "GET")]
    for name, values in (request.get("headers") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            shown = MASK if name.lower() in (auth_header.lower(), "authorization") and value else value
            parts += ["-H", f"{name}: {shown}"]
    body = request.get("body")
    if isinstance(body, dict) and "$base64" in body:
        parts += ["--data-binary", base64.b64decode(body["$base64"]).decode("utf-8", "replace")]
    elif isinstance(body, str):
        parts += ["--data-binary", body]
    parts.append(request["uri"])
    return redact(shlex.join(parts))


def _first(text) -> str:
    return str(text).strip().splitlines()[0] if text and str(text).strip() else ""


def _error_text(value) -> str:
    if not isinstance(value, dict):
        return redact(_first(value)) or "unknown error"
    return redact(": ".join(p for p in (value.get("type"), _first(value.get("message"))) if p))


# The post-deploy subset: the safe methods against the deployed service, judged against this release's pre-release
# run (its record, records.conformance_records) so a failure found before the deploy is never a new break.

KNOWN = "known before deploy (pre-release: API documentation updated)"


def record(run: Conformance) -> dict:
    """What a later run needs of this one: its failures (operation, check), the operations it tried, whether it
    proves anything."""
    return {
        "scope": run.scope,
        "failures": [[f.operation, f.check] for f in run.failures],
        "tried": sorted(run.tried),
        "unjudged": run.unjudged,
    }


@dataclass
class AfterDeploy:
    """The post-deploy subset's failures split by what the pre-release run of this release found."""

    run: Conformance
    baseline: str  # where the pre-release findings came from
    known: list[Failure] = field(default_factory=list)  # the pre-release run found the same operation and check
    new: list[Failure] = field(default_factory=list)  # its operation passed that check before the deploy
    uncompared: list[Failure] = field(default_factory=list)  # no pre-release finding to compare with
    why_uncompared: str = ""

    def rows(self) -> list[tuple[str, ...]]:
        shown = [(KNOWN, f) for f in self.known] + [("new since the deploy", f) for f in self.new]
        shown += [(f"not compared: {self.why_uncompared}", f) for f in self.uncompared]
        return [(status, *row) for status, f in shown for row in rows([f])]


def after_deploy(run: Conformance, pre_release: dict | None, where: str) -> AfterDeploy:
    """Judge the post-deploy subset's failures against the pre-release run's record (None: there is none)."""
    if pre_release is None:
        return AfterDeploy(run, where, uncompared=list(run.failures), why_uncompared=f"no pre-release record ({where})")
    if pre_release.get("unjudged"):
        why = f"the pre-release run proved nothing: {pre_release['unjudged']}"
        return AfterDeploy(run, where, uncompared=list(run.failures), why_uncompared=why)
    found = {tuple(f) for f in pre_release.get("failures", [])}
    tried = set(pre_release.get("tried", []))
    judged = AfterDeploy(run, where, why_uncompared="the pre-release run did not try the operation")
    for failure in run.failures:
        if (failure.operation, failure.check) in found:
            judged.known.append(failure)
        elif failure.operation in tried:
            judged.new.append(failure)
        else:
            judged.uncompared.append(failure)
    return judged
