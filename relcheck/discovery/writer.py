"""The config `relcheck init` writes from what it found, commented, and the summary it prints: what it found, what it
configured, and which items stay NOT VERIFIED until which keys are set."""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from relcheck.core.config import LOOPBACK, Config
from relcheck.discovery.database import DatabaseFound
from relcheck.discovery.service import (
    HEALTH_ROUTES,
    METRICS_ROUTES,
    OPENAPI_ROUTES,
    VERSION_ROUTES,
    ServiceFound,
    outcome,
)
from relcheck.discovery.tree import TreeFound

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
DSN_VARIABLE = "RELCHECK_TARGET_DSN"
UNKNOWN_VERSION = "0.0.0"  # written when no version was given or seen
MIGRATIONS = {  # tool -> (migrate, downgrade, migration head)
    "alembic": (
        ["{python}", "-m", "alembic", "upgrade", "head"],
        ["{python}", "-m", "alembic", "downgrade", "{previous_head}"],
        ["{python}", "-m", "alembic", "heads"],
    ),
    "django": (["{python}", "manage.py", "migrate", "--noinput"], [], []),
    "none": ([], [], []),
}
# alembic's own reading of a migrations directory's heads: no app is created (a Flask app factory may connect to its
# database, or migrate it, when `flask db heads` builds it)
ALEMBIC_HEADS = (
    "import sys; from alembic.script import ScriptDirectory; print(*ScriptDirectory(sys.argv[1]).get_heads())"
)


def migration_commands(tree: TreeFound | None) -> tuple[list[str], list[str], list[str]]:
    """(migrate, downgrade, migration head) for the tree's migration tool; Flask-Migrate's through `flask db`."""
    if tree is None:
        return MIGRATIONS["none"]
    if tree.migrations != "flask":
        return MIGRATIONS[tree.migrations]
    flask = ["{python}", "-m", "flask", *(["--app", tree.flask_app] if tree.flask_app else []), "db"]
    directory = ["-d", tree.migrations_dir]
    return (
        [*flask, "upgrade", *directory],
        [*flask, "downgrade", *directory, "{previous_head}"],
        ["{python}", "-c", ALEMBIC_HEADS, tree.migrations_dir],
    )


# The keys init may leave unset and the items each leaves NOT VERIFIED. The summary's list is this table read over
# the config init wrote (see not_verified), so a key the written config leaves unset is always listed.
UNSET = {
    "release.version": "Verify service status (version), Release notes prepared",
    "release.previous_version": "Prepare rollback plan, history comparisons",
    "contacts": "Emergency Contacts (a CONTACTS.md in the service's tree)",
    "target.source": "Code Quality, Security scan, Documentation (run init with --source)",
    "target.repository": "Code review completed, Documentation updated, Record deployment notes (its git history)",
    "target.dsn": "Backup current system, Run health checks (database part), data integrity, resource checks",
    "target.routes.health": "Run health checks, Monitor system health",
    "target.routes.version": "Verify service status (version; or target.version.header / .openapi)",
    "target.routes.metrics": "Verify metrics collection, Prepare monitoring, Monitoring (application metrics)",
    "target.routes.openapi": "API documentation updated",
    "target.service.manager": "Verify service status (service manager), Execute deployment",
    "target.service.log_file": "Check logs for errors, Data protection confirmed (log part); or journal_unit",
    "target.auth.tokens": "Access controls verified, Audit logging enabled, authenticated critical paths",
    "quality.tests": "All tests passing, Code coverage >95%",
    "quality.tests.env": "All tests passing (the variables its tests read the database from)",
    "security.bandit.targets": "Security scan completed",
    "security.dependencies.requirements": "Verify dependencies, Security scan completed (its pinned requirements)",
    "security.dependencies.advisories": "Vulnerabilities addressed (an advisory mirror)",
    "security.data_protection.required_headers": "Data protection confirmed (security headers)",
    "security.access.rules": "Access controls verified (expectations only you can state)",
    "docs.openapi_file": "API documentation updated (the committed OpenAPI)",
    "deploy.migrate": "Execute deployment (its migrations; [] if it has none)",
    "deploy.downgrade": "Execute rollback (the schema step back; [] if it has no migrations)",
    "deploy.schema_version_query": 'Prepare rollback plan (the schema version; "" if it has no migrations)',
    "deploy.previous_start": "Prepare rollback plan (which rollback is safe: how the previous release's code is "
    "started on a scratch copy)",
    "deploy.required_metrics": "Prepare monitoring",
    "post_deploy.critical_paths": "Test critical paths",
    "post_deploy.since": "Check logs for errors, Data protection confirmed (log part): the deploy's time, unless "
    "relcheck deploy recorded it or a service manager knows the service's start",
    "post_deploy.advancing_counters": "Verify metrics collection (counters advancing)",
    "monitoring.request_counter": "Monitoring: request rates, error rates",
    "monitoring.route_labels": "Monitoring: error rates and response times per route",
    "monitoring.latency_histogram": "Monitoring: response times",
    "monitoring.p95_ms": "Monitoring: response times (your latency SLA; or route_p95_ms)",
    "monitoring.calculations": "Business metrics (calculations, validations, cache, queues, accuracy)",
    "performance": "Performance Verification, Monitor performance (init --write-load writes scenarios)",
    "performance.stress.required_rps": "Stress testing completed (until the results history holds the previous "
    "release's measured capacity)",
    "signoff.allowed_signers": "Release Sign-off",
    "signoff.roles": "Release Sign-off",
    "notify.webhook": "Notify stakeholders, Update status board (or notify.smtp, notify.status_board)",
}
# Where unset means more than an empty value (a placeholder, an alternative key, a key that matters only with another)
UNSET_WHEN: dict[str, Callable[[Config], object]] = {
    "release.version": lambda c: c.release.version == UNKNOWN_VERSION,
    "target.repository": lambda c: not c.target.repository and not (c.source / ".git").exists(),
    "target.routes.version": lambda c: (
        not (c.target.routes.version or c.target.version.header or c.target.version.openapi)
    ),
    "target.service.manager": lambda c: c.target.service.manager == "none",
    # matters only with migrations: without them the schema the previous release reads does not change
    "deploy.previous_start": lambda c: bool(c.deploy.migrate) and not c.deploy.previous_start,
    "target.service.log_file": lambda c: not (c.target.service.log_file or c.target.service.journal_unit),
    "quality.tests.env": lambda c: c.quality.tests and not c.quality.tests.env,
    # the log window starts at the deploy: with no service manager to ask for the start, only this says when
    "post_deploy.since": lambda c: c.target.service.manager == "none" and not c.post_deploy.since,
    "monitoring.route_labels": lambda c: c.monitoring.request_counter and not c.monitoring.route_labels,
    "monitoring.p95_ms": lambda c: c.monitoring.p95_ms is None and not c.monitoring.route_p95_ms,
    "monitoring.calculations": lambda c: (
        not any(
            (c.monitoring.calculations, c.monitoring.validations, c.monitoring.cache_hits, c.monitoring.queue_gauges)
        )
    ),
    "performance.stress.required_rps": lambda c: c.performance and c.performance.stress.required_rps is None,
    "notify.webhook": lambda c: not (c.notify.webhook or c.notify.smtp or c.notify.status_board),
}


def not_verified(config: Config) -> list[tuple[str, str]]:
    """(key, the items it leaves NOT VERIFIED) for every key of UNSET the config leaves unset."""
    return [(key, items) for key, items in UNSET.items() if UNSET_WHEN.get(key, partial(_empty, key))(config)]


def _empty(key: str, config: Config) -> bool:
    value: object = config
    for name in key.split("."):
        value = getattr(value, name, None)
    return value in (None, "", [], {})


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
    """The config as lines, what was found and configured, and the variables to export before a run (the summary's
    NOT VERIFIED list is read from the written config: see not_verified)."""

    lines: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)

    def section(self, name: str, comment: str = "") -> None:
        self.lines += ["", f"[{name}]"] + ([f"# {comment}"] if comment else [])

    def set(self, name: str, value, comment: str = "") -> None:
        self.lines.append(f"{key(name)} = {toml(value)}" + (f"  # {comment}" if comment else ""))

    def hint(self, text: str) -> None:
        self.lines.append(f"# {text}")


def draft(
    service: ServiceFound,
    tree: TreeFound | None,
    database: DatabaseFound | None,
    out: Path,
    product: str,
    release_version: str,
    allowed_hosts: list[str],
    load_files: dict[str, str],
    dsn: str = "",
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
    _release(d, service, product, release_version)
    _target(d, service, tree, database, out, allowed_hosts, dsn)
    if tree:
        _quality_and_security(d, tree)
        _docs(d, tree, service)
    _data_protection(d, service)
    _access(d, service)
    _api(d, service)
    _deploy(d, tree, database, service, out)
    _monitoring(d, service)
    _performance(d, load_files, out)
    return d


def _release(d: Draft, service: ServiceFound, product: str, release_version: str) -> None:
    d.section("release")
    d.set("product", product)
    version = release_version or (service.versions[0].value if service.versions else "")
    d.set("version", version or UNKNOWN_VERSION, "the release being checked" + ("" if version else ": TODO"))
    d.set("previous_version", "", "TODO: the release this one replaces (rollback target, history, git tag)")


def _target(d, service: ServiceFound, tree, database, out: Path, allowed_hosts: list[str], dsn: str) -> None:
    d.section("target")
    d.set("mode", "remote")
    d.set("base_url", service.base_url)
    if database is not None:
        d.set("dsn", f"env:{DSN_VARIABLE}", "read in read-only sessions; writes go only to scratch copies")
        d.exports.append(dsn_export(dsn))
        if database.error:
            d.found.append(f"database: NOT READ ({database.error})")
    else:
        d.hint(f'dsn = "env:{DSN_VARIABLE}"   # TODO: the service\'s database (backups, health, data checks)')
    if tree:
        d.set("source", os.path.relpath(tree.source, out.parent), "the service's tree: tests, docs, requirements, code")
        if tree.app_dir:
            d.set("app_dir", tree.app_dir, "where the service lives in its repository: commands run there")
        if tree.python:
            d.set("python", tree.python, "the service's interpreter: its tests, migrations and deploy steps")
    else:
        d.set("source", "", "TODO: the service's tree (tests, docs, requirements, code); run init with --source")
    if allowed_hosts != list(LOOPBACK):
        d.set("allowed_hosts", allowed_hosts, "hosts relcheck may send load and probes to")
    d.section("target.routes", 'only routes that answered as expected; "" = none did (what answered is noted)')
    route_source = next((v for v in service.versions if v.kind in ("route", "header")), None)
    _route(d, "health", service.health_route, service, HEALTH_ROUTES)
    _route(d, "version", route_source.route if route_source else "", service, VERSION_ROUTES)
    _route(d, "metrics", service.metrics.route if service.metrics else "", service, METRICS_ROUTES)
    _route(d, "openapi", service.openapi_route, service, OPENAPI_ROUTES)
    _version_source(d, service)
    d.section("target.service", "how the service is managed on its host (systemctl/journalctl through a prefix)")
    d.set("manager", "none", 'TODO: "systemd" with unit = "<name>.service" (and command_prefix = ["ssh", "host"])')
    d.hint('log_file = "/var/log/<service>.log"   # TODO: or journal_unit = "<name>.service"')
    d.section("target.auth")
    d.set("header", service.auth_header)
    d.set("scheme", service.auth_scheme or "Bearer", "as documented" if service.auth_scheme else "TODO: check")
    d.hint('tokens = { viewer = "env:RELCHECK_TOKEN_VIEWER", admin = "env:RELCHECK_TOKEN_ADMIN" }   # TODO')


def _route(d: Draft, name: str, route: str, service: ServiceFound, candidates) -> None:
    """A route init saw answer as expected, else "" (not the default, which it may have seen fail): unset."""
    if route:
        d.set(name, route, f"answered {outcome(service.answers[route])}" if route in service.answers else "")
    else:
        d.set(name, "", f"unset, none answered as expected: {service.seen(candidates)}")


def dsn_export(dsn: str) -> str:
    """The line that sets the DSN variable the config reads, without the password (the user adds it)."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return f"export {DSN_VARIABLE}={shlex.quote(dsn)}"
    shown = urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":PASSWORD@")))
    return f"export {DSN_VARIABLE}={shlex.quote(shown)}   # replace PASSWORD with its password"


def _version_source(d: Draft, service: ServiceFound) -> None:
    d.section("target.version", "where the running version is read; with none it is not verified (never a failure)")
    chosen = service.versions[0] if service.versions else None
    if chosen is None:
        d.hint('pointer = "/version"   # TODO: a JSON pointer into routes.version\'s answer, or header = "X-Version"')
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


SCRATCH_PART = {  # the last word of a variable's name -> the scratch part it holds (libpq's PG* names too)
    **dict.fromkeys(("HOST", "PGHOST"), "{scratch_host}"),
    **dict.fromkeys(("PORT", "PGPORT"), "{scratch_port}"),
    **dict.fromkeys(("USER", "USERNAME", "PGUSER"), "{scratch_user}"),
    **dict.fromkeys(("PASSWORD", "PASS", "PGPASSWORD"), "{scratch_password}"),
    **dict.fromkeys(("NAME", "DB", "DBNAME", "DATABASE", "PGDATABASE"), "{scratch_db}"),
}
NOT_COUNTED = ["*/tests.py", "*/tests/*", "*/test_*.py", "*/migrations/*"]


def scratch_value(variable: str) -> str:
    """The scratch placeholder for what a variable's name says it holds (POSTGRES_HOST -> {scratch_host}); the DSN for
    anything else (DATABASE_URL, KUNDLI_DB_URL)."""
    return SCRATCH_PART.get(variable.upper().rsplit("_", 1)[-1], "{scratch_dsn}")


def _quality_and_security(d: Draft, tree: TreeFound) -> None:
    if tree.tests:
        variables = [*tree.test_database_variables, *tree.database_variables]
        scratch_env = {v: scratch_value(v) for v in variables}
        d.section("quality.tests", "the service's own tests, run on a scratch database relcheck creates and drops")
        if tree.runner == "django":
            d.set("runner", "django", "JUnit through relcheck's runner; Django runs in test_<scratch>, relcheck's")
            d.set("command", ["{python}", "manage.py", "test"])
        else:
            d.set("command", ["{python}", "-m", "pytest", tree.tests, "-q", "-p", "no:cacheprovider"])
        d.set("env", scratch_env, "" if scratch_env else "TODO: the variable(s) its tests read the database from")
        prepare = migration_commands(tree)[0]
        if tree.migrations == "flask":  # `flask db upgrade` migrates the app's database, not the tests' variable
            d.hint(f"prepare = [{toml(prepare)}]   # if its tests expect a migrated database (with the app's env)")
        elif prepare and tree.runner != "django":  # Django migrates its test database itself
            d.set("prepare", [prepare], "the scratch database starts empty: migrate it first")
        d.configured.append(f"tests: {tree.runner} {tree.tests} on a scratch database")
    if tree.packages:
        d.section("quality.coverage")
        d.set("source", [p.split("/")[-1] for p in tree.packages])
        if tree.coverage_definition:
            d.found.append(f"coverage configuration: {tree.coverage_definition} (coverage.py applies it)")
        else:
            d.set("omit", NOT_COUNTED, "the code, not its tests or migrations: edit to the project's own definition")
        d.section("security.bandit")
        d.set("targets", tree.packages)
        d.configured.append(f"bandit and coverage over {', '.join(tree.packages)}")
    d.section("security.dependencies")
    if tree.dependency_inputs or not (tree.app / "pyproject.toml").is_file():
        d.set("requirements", tree.dependency_inputs or ["requirements.txt"])
    else:  # what pip would install is not pinned anywhere in the tree
        d.set("requirements", [], "TODO: no requirements file or lockfile; pyproject.toml names ranges, not pins")
    d.set("advisories", [], "TODO: a local advisory mirror (PyPA advisory-database clone or OSV all.zip)")
    if tree.dependency_inputs:
        d.found.append(f"dependency inputs: {', '.join(tree.dependency_inputs)} ({tree.manager})")


def _docs(d: Draft, tree: TreeFound, service: ServiceFound) -> None:
    d.section("docs")
    d.set("required", [n for n in tree.docs if n != "docs"] or ["README.md"])
    if tree.openapi_file:
        d.set("openapi_file", tree.openapi_file, "the committed OpenAPI, compared with the served one")
    head = migration_commands(tree)[2]
    if head:
        d.set(
            "migration_head",
            head,
            "the heads its migrations ship (alembic reads them; no app started)" if tree.migrations == "flask" else "",
        )
    d.found.append(f"docs: {', '.join(tree.docs) or 'none'}; migrations: {tree.migrations}")


def _data_protection(d: Draft, service: ServiceFound) -> None:
    """The security headers on every answer become the required ones: a later release that drops one fails. One on
    only some answers is not the service's (the check asserts them on every probe's answer): named, not required."""
    d.section("security.data_protection", "what the service's answers must (not) show")
    d.set(
        "required_headers",
        {h: "" for h in service.security_headers},
        f"on every one of the {service.requests} answers init received (any value)",
    )
    if service.partial_headers:
        d.hint(
            "on only some answers, so not required (not service-wide): "
            + ", ".join(f"{h} ({n} of {service.requests})" for h, n in service.partial_headers.items())
        )
    d.set("probes", [{"method": "GET", "path": p} for p in dict.fromkeys([service.health_route or "/", "/"])])
    if urlsplit(service.base_url).scheme == "http" and urlsplit(service.base_url).hostname in LOOPBACK:
        d.set("allow_plain_http", True, "checked on loopback; TODO: a service reached by others needs https")
    d.configured.append("required security headers: " + (", ".join(service.security_headers) or "none on every answer"))


def _access(d: Draft, service: ServiceFound) -> None:
    secured = [o for o in service.operations if o.secured]
    d.section("security.access", "the access matrix: each rule's expected status per role (filled in by you)")
    if not secured:
        d.hint("no operation documents its security: write rules like the one below")
    d.hint('rules = [ { method = "GET", path = "/items", expect = { anonymous = 401, viewer = 200 } } ]')
    for op in secured[:20]:
        d.hint(f"  {op.method} {op.path}: documented as secured; expect anonymous = 401, roles = ?")


REVOKES = re.compile(r"logout|log-out|signout|sign-out|revoke")  # an operation that ends the run's credentials ...
SESSION = re.compile(r"token|session|login|auth")  # ... or a DELETE of one of these


def revokes(method: str, path: str) -> bool:
    """Whether the operation looks like it ends the caller's credentials (the conformance run would stop itself)."""
    named = [part for part in path.lower().split("/") if part and not part.startswith("{")]  # what it acts on
    return bool(REVOKES.search(path.lower())) or method == "DELETE" and bool(named and SESSION.search(named[-1]))


def _api(d: Draft, service: ServiceFound) -> None:
    """The conformance run's own values for this service, never the reference's (its X-API-Version, its token
    route): nothing pinned, and only the operations that would end the run's credentials left out."""
    if not service.operations:
        return
    d.section("quality.api", "the conformance run (Schemathesis) against the served OpenAPI document")
    ending = [f"{o.method} {o.path}" for o in service.operations if revokes(o.method, o.path)]
    d.set("exclude", ending, "never sent: they would end the run's own credentials (edit: any others)")
    d.set("parameters", {}, 'header/query values sent as they are, never generated ("header.<name>" = "...")')
    for name in service.header_parameters:
        d.hint(
            f'{name} is a documented header: if the service accepts only some values, pin one: "header.{name}" = "..."'
        )
    d.hint(
        'start = ["..."]   # the service from target.source on a scratch database: start_env = { X = "{scratch_dsn}" },'
    )
    d.hint("#   start_prepare, start_provision; every method is tried there (without it, safe methods on the live one)")


def _deploy(d: Draft, tree: TreeFound | None, database: DatabaseFound | None, service: ServiceFound, out: Path) -> None:
    tool = tree.migrations if tree else "none"
    migrate, downgrade, _ = migration_commands(tree)
    d.section("deploy", "the deployment and rollback procedures (relcheck deploy / rollback / the rollback plan)")
    found = "no alembic or Django migrations found: TODO if the service migrates with a command of its own"
    d.set("migrate", migrate, "" if migrate else found if tree else "TODO: no --source: its migrations")
    d.set("downgrade", downgrade, "" if downgrade or not migrate else "TODO: how to step the schema back")
    if tree and not tree.dependency_inputs and (tree.app / "pyproject.toml").is_file():
        d.set(
            "install", ["{python}", "-m", "pip", "install", "--quiet", "."], "no requirements file: the project itself"
        )
    if tree and tree.database_variables:
        env = {tree.database_variables[0]: "{dsn}"}
        d.set("env", env, "how the migrations read the database URL")
        if migrate:  # the previous release's code reads its database as the migrations do: the scratch copy's
            d.set("previous_env", env, "the previous release's code on the rollback plan's scratch copy")
    elif tree and tree.migrations == "flask":
        settings = ", ".join(tree.settings_variables)
        d.set("env", {}, "TODO: how `flask db` reads the database: "
              + (f"{settings} naming a settings file whose database is {{dsn}}" if settings
                 else "the variable its app reads, = \"{dsn}\""))  # fmt: skip
    if migrate:  # init does not know how the service is started: the rollback choice waits for it
        d.hint(
            'previous_start = ["{python}", "-m", "<your service>", "--port", "{port}"]   # TODO: how the previous '
            "release's code (its tree) is started on {host}:{port}; it must report release.previous_version"
        )
    query = (database.version_query if database else "") or ("" if tool == "none" else None)
    if query is not None:
        d.set("schema_version_query", query)
    if service.metrics:
        required = [n for n in (service.metrics.request_counter, service.metrics.latency_histogram) if n]
        d.set("required_metrics", required, "families that must be there after a deploy")
    counter = service.metrics.request_counter if service.metrics else ""
    if counter or service.server_errors:
        d.section("post_deploy")
    if counter:
        d.set("advancing_counters", [counter])
    if service.server_errors:
        d.set("init_record", init_record(out).name, "init's requests that answered 5xx: the errors they logged")
    d.hint('critical_paths = [ { name = "...", method = "GET", path = "...", expect = 200 } ]   # TODO')


def init_record(out: Path) -> Path:
    """Where init records its own requests that answered 5xx, beside the config it writes."""
    return out.with_name(f"{out.stem}-init-requests.json")


def _monitoring(d: Draft, service: ServiceFound) -> None:
    found = service.metrics
    d.section("monitoring", "the live service's metrics, read after a little synthetic traffic")
    if not found:
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
    d.found.append(f"metrics at {found.route}: {len(found.families)} families; can serve {', '.join(serves) or '-'}")


def _performance(d: Draft, load_files: dict[str, str], out: Path) -> None:
    if not load_files:
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
    """What was found and configured, the exports a run needs, and the NOT VERIFIED list read from the written
    config (so a key left unset is always in it)."""
    lines = [f"wrote {out}", "", "found:"] + [f"  - {f}" for f in d.found]
    lines += ["", "configured:"] + [f"  - {c}" for c in d.configured]
    if d.exports:
        lines += ["", "before each run, set:"] + [f"  {e}" for e in d.exports]
    written = Config.model_validate({**tomllib.loads(out.read_text(encoding="utf-8")), "path": out.resolve()})
    lines += ["", "NOT VERIFIED until you set:"] + [f"  - {key}: {items}" for key, items in not_verified(written)]
    return "\n".join(lines)
