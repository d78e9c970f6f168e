"""The config `relcheck init` writes from what it found, commented, and the summary it prints: what it found, what it
configured, and which items stay NOT VERIFIED until which keys are set."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from relcheck.core.config import LOOPBACK
from relcheck.discovery.database import DatabaseFound
from relcheck.discovery.service import ServiceFound
from relcheck.discovery.tree import TreeFound

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
DSN_VARIABLE = "RELCHECK_TARGET_DSN"
MIGRATIONS = {  # tool -> (migrate, downgrade, migration head)
    "alembic": (
        ["{python}", "-m", "alembic", "upgrade", "head"],
        ["{python}", "-m", "alembic", "downgrade", "{previous_head}"],
        ["{python}", "-m", "alembic", "heads"],
    ),
    "django": (["{python}", "manage.py", "migrate", "--noinput"], [], []),
    "none": ([], [], []),
}


def toml(value) -> str:
    """A TOML value on one line (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key(k)} = {toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"no TOML for {type(value).__name__}")


def key(name: str) -> str:
    return name if BARE_KEY.match(name) else json.dumps(name)


@dataclass
class Draft:
    """The config as lines, and the summary's three lists."""

    lines: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)
    unverified: list[tuple[str, str]] = field(default_factory=list)  # (items, the key that would verify them)

    def section(self, name: str, comment: str = "") -> None:
        self.lines += ["", f"[{name}]"] + ([f"# {comment}"] if comment else [])

    def set(self, name: str, value, comment: str = "") -> None:
        self.lines.append(f"{key(name)} = {toml(value)}" + (f"  # {comment}" if comment else ""))

    def hint(self, text: str) -> None:
        self.lines.append(f"# {text}")

    def todo(self, items: str, keys: str) -> None:
        self.unverified.append((items, keys))


def draft(
    service: ServiceFound,
    tree: TreeFound | None,
    database: DatabaseFound | None,
    out: Path,
    product: str,
    release_version: str,
    allowed_hosts: list[str],
    load_files: dict[str, str],
) -> Draft:
    d = Draft()
    d.lines += [
        f"# relcheck config for {product}, written by `relcheck init` on {date.today()} from {service.base_url}",
        f"# ({service.requests} requests){f', {tree.source}' if tree else ''}"
        f"{' and its database' if database else ''}.",
        "# Check every value; `relcheck config --reference` lists every key. What stays NOT VERIFIED is printed by",
        "# `relcheck init` and shown in each report with the key that would verify it.",
    ]
    if tree and (tree.source / "CONTACTS.md").is_file():
        d.set("contacts", "CONTACTS.md", "the emergency contacts (in target.source)")
    else:
        d.todo("Emergency Contacts", "contacts (a CONTACTS.md in the service's tree)")
    _release(d, service, product, release_version)
    _target(d, service, tree, database, out, allowed_hosts)
    if tree:
        _quality_and_security(d, tree)
        _docs(d, tree, service)
    else:
        d.todo("Code Quality, Security scan, Documentation", "target.source (run init with --source)")
    _data_protection(d, service)
    _access(d, service)
    _deploy(d, tree, database, service)
    _monitoring(d, service)
    _performance(d, load_files, out)
    d.todo("Release Sign-off", "signoff.allowed_signers and signoff.roles")
    d.todo("Notify stakeholders, Update status board", "notify.webhook / notify.smtp / notify.status_board")
    return d


def _release(d: Draft, service: ServiceFound, product: str, release_version: str) -> None:
    d.section("release")
    d.set("product", product)
    version = release_version or (service.versions[0].value if service.versions else "")
    d.set("version", version or "0.0.0", "the release being checked" + ("" if version else ": TODO"))
    d.set("previous_version", "", "TODO: the release this one replaces (rollback target, history, git tag)")
    d.todo("Rollback plan and history comparisons", "release.previous_version")


def _target(d, service: ServiceFound, tree, database, out: Path, allowed_hosts: list[str]) -> None:
    d.section("target")
    d.set("mode", "remote")
    d.set("base_url", service.base_url)
    if database is not None:
        d.set("dsn", f"env:{DSN_VARIABLE}", "read in read-only sessions; writes go only to scratch copies")
        if database.error:
            d.found.append(f"database: NOT READ ({database.error})")
    else:
        d.hint(f'dsn = "env:{DSN_VARIABLE}"   # TODO: the service\'s database (backups, health, data checks)')
        d.todo("Backup, health (database part), data integrity, resource checks", "target.dsn")
    if tree:
        d.set("source", os.path.relpath(tree.source, out.parent), "the service's tree: tests, docs, requirements, code")
        if tree.app_dir:
            d.set("app_dir", tree.app_dir, "where the service lives in its repository: commands run there")
        if tree.python:
            d.set("python", tree.python, "the service's interpreter: its tests, migrations and deploy steps")
        if not tree.is_git:
            d.todo("Code review, Documentation updated, Record deployment notes", "target.repository (its git history)")
    else:
        d.set("source", ".", "TODO: the service's tree (tests, docs, requirements, code)")
    if allowed_hosts != list(LOOPBACK):
        d.set("allowed_hosts", allowed_hosts, "hosts relcheck may send load and probes to")
    d.section("target.routes")
    d.set("health", service.health_route or "/health", "" if service.health_route else "TODO: no health route found")
    route_source = next((v for v in service.versions if v.kind in ("route", "header")), None)
    d.set("version", route_source.route if route_source else "", "" if route_source else "no version route found")
    d.set("metrics", service.metrics.route if service.metrics else "", "" if service.metrics else "none found")
    d.set("openapi", service.openapi_route or "", "" if service.openapi_route else "no OpenAPI document found")
    _version_source(d, service)
    d.section("target.service", "how the service is managed on its host (systemctl/journalctl through a prefix)")
    d.set("manager", "none", 'TODO: "systemd" with unit = "<name>.service" (and command_prefix = ["ssh", "host"])')
    d.hint('log_file = "/var/log/<service>.log"   # TODO: or journal_unit = "<name>.service"')
    d.todo("Verify service status (service manager part), Execute deployment", "target.service.manager, unit")
    d.todo("Check logs for errors, data protection (log part)", "target.service.log_file or journal_unit")
    d.section("target.auth")
    d.set("header", service.auth_header)
    d.set("scheme", service.auth_scheme or "Bearer", "as documented" if service.auth_scheme else "TODO: check")
    d.hint('tokens = { viewer = "env:RELCHECK_TOKEN_VIEWER", admin = "env:RELCHECK_TOKEN_ADMIN" }   # TODO')
    d.todo("Access controls, Audit logging, authenticated critical paths", "target.auth.tokens (a token per role)")


def _version_source(d: Draft, service: ServiceFound) -> None:
    d.section("target.version", "where the running version is read; with none it is not verified (never a failure)")
    chosen = service.versions[0] if service.versions else None
    if chosen is None:
        d.hint('pointer = "/version"   # TODO: a JSON pointer into routes.version\'s answer, or header = "X-Version"')
        d.todo("Verify service status (version part)", "target.routes.version + target.version.*")
        return
    if chosen.kind == "route":
        d.set("pointer", chosen.pointer, f"GET {chosen.route} said {chosen.value!r}")
    elif chosen.kind == "header":
        d.set("header", chosen.header, f"{chosen.header} of GET {chosen.route} said {chosen.value!r}")
    else:
        d.set("openapi", True, f"info.version said {chosen.value!r}: check it is the release's, not the API's")
    d.found.append(
        "version: " + "; ".join(f"{v.kind} {v.route} {v.pointer or v.header} = {v.value!r}" for v in service.versions)
    )


def _quality_and_security(d: Draft, tree: TreeFound) -> None:
    if tree.tests:
        scratch_env = {v: "{scratch_dsn}" for v in [*tree.test_database_variables, *tree.database_variables]}
        d.section("quality.tests", "the service's own tests, run on a scratch database relcheck creates and drops")
        d.set("command", ["{python}", "-m", "pytest", tree.tests, "-q", "-p", "no:cacheprovider"])
        d.set("env", scratch_env, "" if scratch_env else "TODO: the variable(s) its tests read the database from")
        prepare = MIGRATIONS[tree.migrations][0]
        if prepare:
            d.set("prepare", [prepare], "the scratch database starts empty: migrate it first")
        d.configured.append(f"tests: pytest {tree.tests} on a scratch database")
    else:
        d.todo("All tests passing, Code coverage", "quality.tests.command (no tests/ found)")
    if tree.packages:
        d.section("quality.coverage")
        d.set("source", [p.split("/")[-1] for p in tree.packages])
        d.section("security.bandit")
        d.set("targets", tree.packages)
        d.configured.append(f"bandit and coverage over {', '.join(tree.packages)}")
    else:
        d.todo("Security scan completed", "security.bandit.targets (no code package found)")
    d.section("security.dependencies")
    d.set("requirements", tree.dependency_inputs or ["requirements.txt"])
    d.set("advisories", [], "TODO: a local advisory mirror (PyPA advisory-database clone or OSV all.zip)")
    d.todo("Dependency audit", "security.dependencies.advisories (an advisory mirror)")
    if tree.dependency_inputs:
        d.found.append(f"dependency inputs: {', '.join(tree.dependency_inputs)} ({tree.manager})")


def _docs(d: Draft, tree: TreeFound, service: ServiceFound) -> None:
    d.section("docs")
    d.set("required", [n for n in tree.docs if n != "docs"] or ["README.md"])
    if tree.openapi_file:
        d.set("openapi_file", tree.openapi_file, "the committed OpenAPI, compared with the served one")
    head = MIGRATIONS[tree.migrations][2]
    if head:
        d.set("migration_head", head)
    d.found.append(f"docs: {', '.join(tree.docs) or 'none'}; migrations: {tree.migrations}")


def _data_protection(d: Draft, service: ServiceFound) -> None:
    """The security headers seen become the required ones: a later release that drops one fails."""
    d.section("security.data_protection", "what the service's answers must (not) show")
    d.set("required_headers", {h: "" for h in service.security_headers}, "the ones seen by init (any value)")
    d.set("probes", [{"method": "GET", "path": service.health_route or "/"}, {"method": "GET", "path": "/"}])
    if urlsplit(service.base_url).scheme == "http" and urlsplit(service.base_url).hostname in LOOPBACK:
        d.set("allow_plain_http", True, "checked on loopback; TODO: a service reached by others needs https")
    d.configured.append("required security headers: " + (", ".join(service.security_headers) or "none seen"))


def _access(d: Draft, service: ServiceFound) -> None:
    secured = [o for o in service.operations if o.secured]
    d.section("security.access", "the access matrix: each rule's expected status per role (filled in by you)")
    if not secured:
        d.hint("no operation documents its security: write rules like the one below")
    d.hint('rules = [ { method = "GET", path = "/items", expect = { anonymous = 401, viewer = 200 } } ]')
    for op in secured[:20]:
        d.hint(f"  {op.method} {op.path}: documented as secured; expect anonymous = 401, roles = ?")
    d.todo("Access controls", "security.access.rules (expectations only you can state)")


def _deploy(d: Draft, tree: TreeFound | None, database: DatabaseFound | None, service: ServiceFound) -> None:
    tool = tree.migrations if tree else "none"
    migrate, downgrade, _ = MIGRATIONS[tool]
    d.section("deploy", "the deployment and rollback procedures (relcheck deploy / rollback / the rollback plan)")
    d.set("migrate", migrate, "" if migrate else "no migrations found")
    d.set("downgrade", downgrade, "" if downgrade or not migrate else "TODO: how to step the schema back")
    if tree and tree.database_variables:
        d.set("env", {tree.database_variables[0]: "{dsn}"}, "how the migrations read the database URL")
    query = (database.version_query if database else "") or ("" if tool == "none" else None)
    if query is not None:
        d.set("schema_version_query", query)
    if service.metrics:
        required = [n for n in (service.metrics.request_counter, service.metrics.latency_histogram) if n]
        d.set("required_metrics", required, "families that must be there after a deploy")
    if service.metrics and service.metrics.request_counter:
        d.section("post_deploy")
        d.set("advancing_counters", [service.metrics.request_counter])
    d.hint('critical_paths = [ { name = "...", method = "GET", path = "...", expect = 200 } ]   # TODO')
    d.todo("Test critical paths", "post_deploy.critical_paths")


def _monitoring(d: Draft, service: ServiceFound) -> None:
    found = service.metrics
    d.section("monitoring", "the live service's metrics, read after a little synthetic traffic")
    if not found:
        d.todo("Monitoring (application metrics)", "target.routes.metrics (no Prometheus endpoint found)")
        return
    serves = ["CPU", "memory"] if "process_cpu_seconds" in found.families else []
    if found.request_counter:
        d.set("request_counter", found.request_counter)
        d.set("status_label", found.status_label)
        d.set("route_labels", found.route_labels)
        serves += ["request rate", "error rates"]
    if found.latency_histogram:
        d.set("latency_histogram", found.latency_histogram)
        serves.append("response times")
        d.hint("p95_ms = 500   # TODO: your latency SLA per route (route_p95_ms for single routes)")
        d.todo("Response times (monitoring)", "monitoring.p95_ms (your latency SLA)")
    d.found.append(f"metrics at {found.route}: {len(found.families)} families; can serve {', '.join(serves) or '-'}")
    d.todo("Business metrics (calculations, validations, cache, queues, accuracy)", "monitoring.* for your metrics")


def _performance(d: Draft, load_files: dict[str, str], out: Path) -> None:
    if not load_files:
        d.todo("Performance Verification, Monitor performance", "performance.* (init --write-load writes scenarios)")
        return
    scenario = os.path.relpath(load_files["scenario"], out.parent)
    d.section("performance", "load scenarios from the OpenAPI's safe GET operations (edit the file freely)")
    d.section("performance.load")
    for name, value in (("locustfile", scenario), ("users", 10), ("spawn_rate", 10), ("duration_s", 20)):
        d.set(name, value)
    d.set("min_requests", 100)
    d.section("performance.smoke")
    for name, value in (("locustfile", scenario), ("users", 1), ("spawn_rate", 1), ("duration_s", 4), ("warmup_s", 0)):
        d.set(name, value)
    d.section("performance.stress")
    d.set("locustfile", os.path.relpath(load_files["stress"], out.parent))
    d.set("steps", [1, 2, 4, 8, 16])
    d.set("step_s", 3)
    d.section("performance.baseline")
    d.set("mode", "history", "compared with earlier runs of this suite (remote targets)")
    d.configured.append(f"load, smoke and stress scenarios: {scenario}")


def summary(d: Draft, out: Path) -> str:
    lines = [f"wrote {out}", "", "found:"] + [f"  - {f}" for f in d.found]
    lines += ["", "configured:"] + [f"  - {c}" for c in d.configured]
    lines += ["", "NOT VERIFIED until you set:"] + [f"  - {items}: {keys}" for items, keys in d.unverified]
    return "\n".join(lines)
