"""relcheck.toml: the suite's configuration, validated on load.

Any string value may be written "env:NAME" to read it from the environment (for secrets). Relative paths are
relative to the config file. A bad file raises ConfigError naming every problem, one line each (key and problem).
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from relcheck.core import secrets

REPO = Path(__file__).resolve().parents[2]
IN_CHECKOUT = (REPO / "checks" / "test_post_deploy.py").is_file()  # run from relcheck's own checkout (editable)
DEFAULT_PATH = Path("relcheck.toml")  # of the working directory


def regex_with_a_group(value: str, without_one: str) -> str:
    """A validator's check: value is a regular expression with at least one group (else ValueError without_one)."""
    try:
        groups = re.compile(value).groups
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    if groups < 1:
        raise ValueError(without_one)
    return value


class ConfigError(ValueError):
    """The configuration cannot be used; the message is one line naming the file, key and problem."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LOOPBACK = ("127.0.0.1", "localhost", "::1")  # the hosts relcheck may probe and load by default
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


class Release(Model):
    product: str
    version: str
    previous_version: str = ""
    ref: str = ""  # git ref of this release; default "v<version>"
    previous_ref: str = ""  # default "v<previous_version>"
    id: str = ""  # links the runs of one release; default "<product>-<version>"
    artifacts: list[str] = []  # built distributions or images (globs relative to this file): statement subjects
    migrations: list[str] = ["migrations/versions/*.py"]  # schema migration files (globs in target.source): subjects

    @model_validator(mode="after")
    def _safe_names(self):
        """They name directories under reports/: nothing may lead outside it."""
        for key in ("product", "version", "previous_version", "id"):
            value = getattr(self, key)
            if value and (not SAFE_NAME.fullmatch(value) or ".." in value):
                raise ValueError(f"{key}: not a safe name (letters, digits, '.', '_', '+', '-'; no '..' or '/')")
        return self

    @property
    def release_id(self) -> str:
        return self.id or f"{self.product}-{self.version}"

    @property
    def git_ref(self) -> str:
        return self.ref or f"v{self.version}"

    @property
    def previous_git_ref(self) -> str:
        return self.previous_ref or (f"v{self.previous_version}" if self.previous_version else "")


class Routes(Model):
    health: str = "/health"
    version: str = "/version"  # "" = the service has no version route
    metrics: str = "/metrics"  # "" = the service exposes no Prometheus metrics
    openapi: str = "/openapi.json"


class VersionSource(Model):
    """Where the running version is read. With no source the version is not verified (never a failure)."""

    pointer: str = "/version"  # a JSON pointer into routes.version's answer ...
    header: str = ""  # ... or this response header (of routes.version, else of routes.health) ...
    openapi: bool = False  # ... or info.version of routes.openapi's document


class Service(Model):
    manager: Literal["process", "systemd", "none"] = "process"
    unit: str = ""
    command_prefix: list[str] = []  # e.g. ["ssh", "ops@app1"] to run systemctl/journalctl on the service host
    log_file: str = ""  # the service log, readable from here ...
    journal_unit: str = ""  # ... or the unit whose journal is the service log (journalctl -u)
    log_timestamp: str = r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"  # a log
    #   file's lines start with a timestamp, this regex's first group (a line without one continues the line before)
    log_time_format: str = ""  # the timestamp's strptime format, e.g. "%d/%b/%Y:%H:%M:%S %z"; "" = ISO 8601
    log_timezone: str = ""  # IANA zone of the log's timestamps without an offset ("Asia/Kolkata"); "" = this host's

    @field_validator("log_timestamp")
    @classmethod
    def _one_group(cls, value: str) -> str:
        return regex_with_a_group(value, "needs a group around the timestamp, e.g. ^\\[([^]]+)\\]")

    @field_validator("log_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("not an IANA time zone (e.g. 'Asia/Kolkata', 'UTC')") from None
        return value


class Auth(Model):
    header: str = "Authorization"
    scheme: str = "Bearer"
    tokens: dict[str, str] = {}  # role -> token; provisioned automatically for the embedded target


class Target(Model):
    mode: Literal["embedded", "remote"]
    base_url: str = ""
    dsn: str = ""
    admin_dsn: str = ""  # for scratch databases (restore proofs, target tests); default: dsn
    source: str  # the service's working tree: tests, docs, requirements, code
    app_dir: str = ""  # the service's directory inside it (a monorepo's "backend"): commands run there
    python: str = ""  # the service's interpreter (its virtualenv): the default {python} of its tests, migrations,
    #                   deploy steps and embedded start; default: the one running relcheck
    repository: str = ""  # its git history (a repository or a bundle); default: source
    allowed_hosts: list[str] = list(LOOPBACK)
    request_timeout_s: float = Field(10, gt=0)
    routes: Routes = Routes()
    version: VersionSource = VersionSource()
    service: Service = Service()
    auth: Auth = Auth()

    @model_validator(mode="after")
    def _remote_needs_address(self):
        if self.mode == "remote" and not self.base_url:
            raise ValueError("base_url: required when mode is 'remote'")
        return self


class Embedded(Model):
    """How to run the bundled service: commands are templates over {python} {host} {port} {dsn} {log_file} {role}."""

    python: str = ""  # interpreter for the service; default: the one running relcheck
    database: str  # the service's database and role, created on the embedded PostgreSQL
    user: str
    start: list[str]
    migrate: list[str]
    provision: list[str]  # prints an API token for {role}
    roles: list[str]  # a token is provisioned for each
    env: dict[str, str] = {}
    fault_env: dict[str, str] = {}  # added when faults are set; {faults} is their JSON
    faults: dict[str, Any] = {}
    startup_timeout_s: float = Field(30, gt=0)
    prometheus: bool = True  # monitoring runs start a local Prometheus + node_exporter when installed (PromQL window)


class TargetTests(Model):
    command: list[str]  # [PYTHON, "-m", MODULE, ...]; templates over {python}, {scratch_dsn} and
    #                                   its parts {scratch_host} {scratch_port} {scratch_db} {scratch_user} ...
    python: str = ""  # interpreter with the target's test dependencies; default: target.python
    env: dict[str, str] = {}
    prepare: list[list[str]] = []  # commands run first, same templates and env: a scratch database starts empty,
    #                                e.g. [["{python}", "-m", "alembic", "upgrade", "head"]]
    runner: Literal["pytest", "django", "unittest"] = "pytest"  # django: [PYTHON, "manage.py", "test", ...];
    #   unittest: [PYTHON, "-m", "unittest", ...]; both write JUnit through relcheck's own runner on PYTHONPATH
    junit_option: str = "--junitxml={junit}"  # pytest only
    timeout_s: float = Field(600, gt=0)
    max_skipped: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _no_scratch_name(cls, data):
        if isinstance(data, dict) and "scratch_database" in data:
            raise ValueError(
                "scratch_database: no longer configurable: relcheck names its scratch databases "
                "(relcheck_scratch_<run id>_tests); remove the key"
            )
        return data


class Coverage(Model):
    threshold_percent: float = Field(95.0, ge=0, le=100)  # total coverage must exceed this
    branch: bool = True
    source: list[str] = []  # default: the project's own coverage configuration (.coveragerc, setup.cfg, tox.ini,
    #                         pyproject.toml in its directory) decides; set, it replaces that one's [run] source
    omit: list[str] = []  # file patterns left out of the figure, as coverage.py's omit (e.g. "*/migrations/*")
    least_covered: int = Field(5, ge=0)


class RequestSpec(Model):
    """A request the suite makes: placeholders like {chart_id} come from setup captures, {unique} is fresh,
    {window_date} is a date (YYYY-MM-DD), the same in each round of a monitoring window's synthetic traffic."""

    method: str = "GET"
    path: str
    role: str = "anonymous"
    body: Any = None
    headers: dict[str, str] = {}


class SetupStep(RequestSpec):
    capture: dict[str, str] = {}  # placeholder -> field of the JSON answer


class GitHubApi(Model):
    api_url: str = "https://api.github.com"
    repo: str  # owner/name
    token: str = ""  # "env:GITHUB_TOKEN"
    timeout_s: float = Field(10, gt=0)


class Tracker(Model):
    kind: Literal["file", "github", "none"] = "none"
    file: str = ""  # export relative to target.source: GitHub issues JSON, or CSV
    labels: list[str] = ["critical", "blocker"]
    milestone: str = "{version}"  # matched as a version; "" = any milestone (an issue without one always counts)
    github: GitHubApi | None = None
    max_age_days: float = Field(7, ge=0)  # an older export (file) is stale: not evidence


class Review(Model):
    trailers: list[str] = ["Reviewed-by", "Approved-by"]
    github: GitHubApi | None = None  # merged pull requests count as reviewed when a review is APPROVED


class DocsFollowCode(Model):
    code_paths: list[str] = []  # paths or globs in the target's repository
    doc_paths: list[str] = []


CONFORMANCE_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
)
SCHEMATHESIS_CHECKS = CONFORMANCE_CHECKS + (
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "object_level_authorization",
)


class ApiConformance(Model):
    """Schemathesis against the served OpenAPI document (target.routes.openapi): *API documentation updated* and,
    for ignored auth, *Access controls verified*. Every method only on an instance relcheck started on a scratch
    database (the embedded target); any other service gets GET, HEAD and OPTIONS alone."""

    enabled: bool = True  # false: both items' conformance checks are not verified
    checks: list[str] = list(CONFORMANCE_CHECKS)  # Schemathesis' names (positive_data_acceptance is left out: it
    #   presumes every schema-valid request succeeds, and a business rule's 422 is no contract breach)
    phases: list[Literal["examples", "coverage", "fuzzing", "stateful"]] = ["examples", "coverage", "fuzzing"]
    max_examples: int = Field(3, ge=1)  # generated cases per operation and phase: the request budget
    time_budget_s: float = Field(60, gt=0)  # the run is stopped here; operations not tried by then are listed
    seed: int = 0  # the same seed, the same cases
    role: str = "admin"  # whose token (target.auth.tokens) the run sends; "" = none
    exclude: list[str] = ["DELETE /v1/auth/token"]  # "METHOD /path" never sent (this one revokes the run's token)
    parameters: dict[str, str] = {"header.x-api-version": "1"}  # values sent as they are, never generated
    #   ("<location>.<name>"): kundli-service documents X-API-Version as any string and refuses all but "1", so
    #   generated values would stop every case at the version check
    workers: int = Field(2, ge=1, le=16)
    rate_limit: str = ""  # Schemathesis' --rate-limit, e.g. "10/s" for a live service
    start: list[str] = []  # a command starting the service from target.source on a scratch database relcheck
    #   creates and drops, where every method is tried (the live service gets the safe ones alone); templates over
    #   {python} {host} {port} {scratch_dsn} and its parts {scratch_host} {scratch_port} {scratch_db} ...
    start_env: dict[str, str] = {}  # its environment, same templates
    start_prepare: list[list[str]] = []  # run first, same templates and env: migrate the empty scratch database
    start_provision: list[str] = []  # prints a token for {role} = quality.api.role (its last line); [] = the live one
    start_timeout_s: float = Field(60, gt=0)  # to answer 200 at target.routes.health, and for each step

    @field_validator("checks")
    @classmethod
    def _some_checks(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("names no check (set enabled = false to leave the run out)")
        unknown = [name for name in value if name not in SCHEMATHESIS_CHECKS]
        if unknown:
            known = ", ".join(SCHEMATHESIS_CHECKS)
            raise ValueError(f"not a Schemathesis check: {', '.join(unknown)} (one of {known})")
        return value


class Quality(Model):
    tests: TargetTests | None = None  # unset: the tests and coverage items are not verified
    api: ApiConformance = ApiConformance()
    coverage: Coverage = Coverage()
    tracker: Tracker = Tracker()
    review: Review = Review()
    docs_follow_code: DocsFollowCode = DocsFollowCode()


class Bandit(Model):
    targets: list[str]  # code paths relative to target.source
    severity: Literal["low", "medium", "high"] = "medium"
    confidence: Literal["low", "medium", "high"] = "medium"
    baseline: str = ""  # the target's bandit baseline (JSON), relative to target.source
    timeout_s: float = Field(300, gt=0)
    python: str = ""  # the interpreter bandit runs with (python -m bandit); default: the one running relcheck


class Dependencies(Model):
    requirements: list[str] = ["requirements.txt"]  # requirements files or lockfiles, in target.source
    advisories: list[str] = []  # PyPA advisory-database checkouts, OSV JSON directories, OSV all.zip archives
    pip_audit: Literal["auto", "off", "required"] = "auto"
    timeout_s: float = Field(30, gt=0)
    max_age_days: float = Field(7, ge=0)  # an older mirror is stale: not evidence


class AccessRule(Model):
    method: str = "GET"
    path: str
    body: Any = None
    headers: dict[str, str] = {}
    expect: dict[str, int]  # role (or "anonymous") -> status, tried in this order


class Access(Model):
    setup: list[SetupStep] = []
    rules: list[AccessRule] = []


class DataProtection(Model):
    required_headers: dict[str, str] = {
        "X-Content-Type-Options": "^nosniff$",
        "Content-Security-Policy": "",
        "Referrer-Policy": "",
    }  # header -> regex the value must match
    frame_protection: bool = True
    forbidden_headers: list[str] = ["X-Powered-By", "X-AspNet-Version"]
    server_banner_pattern: str = r"\d"  # a Server header must not show versions
    probes: list[RequestSpec] = [RequestSpec(path="/")]  # answers scanned for headers and leaks
    hashed_columns: list[str] = []  # "table.column" holding credentials
    hash_formats: list[str] = [
        r"^pbkdf2_sha\d+\$",
        r"^sha256:[0-9a-f]{64}$",
        r"^\$argon2",
        r"^\$2[aby]\$",
        r"^scrypt\$",
    ]
    card_numbers: bool = True  # Luhn-valid card numbers, not inside a UUID, a timestamp, an id field or a longer number
    email_addresses: bool = True  # e-mail addresses, not inside an HTML tag (placeholder, value) nor on documentation
    documentation_paths: list[str] = ["/docs", "/redoc", "/openapi.json"]  # pages (and below) that show examples
    id_field_words: list[str] = ["id", "ids", "uuid", "guid", "ref", "key", "ts", "time", "timestamp", "at", "epoch"]
    #   a field whose last word is one of these (order_id, createdAt, ts) holds an id or a time, never a card number
    pii_patterns: dict[str, str] = {}  # more kinds of personal data: name -> regex (each match a finding)
    scan_log: bool = True
    min_tls: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"
    ca_file: str = ""  # private CA for https targets
    allow_plain_http: bool = False  # an internal-only service may answer plain http (shown as a warning)


class AuditTrail(Model):
    action: RequestSpec  # a state change made as a known user
    setup: list[SetupStep] = []
    object_field: str = "id"  # field of the answer naming the changed object
    actor: str  # the user behind action.role's token
    expect_action: str
    source: Literal["table", "log"] = "table"
    table: str = ""  # for source = "table": the audit table ...
    columns: dict[str, str] = {}  # ... and its columns for actor, action, object (and time)
    log_pattern: str = ""  # for source = "log": named groups actor, action, object (time)
    window_s: float = Field(60, gt=0)

    @model_validator(mode="after")
    def _source_named(self):
        if self.source == "table" and not (self.table and {"actor", "action", "object", "time"} <= set(self.columns)):
            raise ValueError("source 'table' needs table and columns for actor, action, object and time")
        if self.source == "log" and not self.log_pattern:
            raise ValueError("source 'log' needs log_pattern")
        return self


class SecurityDocs(Model):
    file: str = "SECURITY.md"
    # an address (also written against harvesters: name “@” domain.org, name [at] domain.org) or a link
    contact_pattern: str = r"[\w.+-]+(?:@|\s*[“\"'\[(]\s*(?:@|at)\s*[”\"'\])]\s*)[\w-]+\.[\w.-]+|https?://\S+"
    placeholders: list[str] = ["TODO", "TBD", "FIXME", "XXX", "[Contact]"]
    sensitive_paths: list[str] = []  # security-relevant code; a change there needs a SECURITY.md change


class Security(Model):
    bandit: Bandit | None = None  # unset: the security scan is not verified
    dependencies: Dependencies = Dependencies()
    waivers: str = ""  # waivers file relative to target.source
    access: Access = Access()
    data_protection: DataProtection = DataProtection()
    audit_trail: AuditTrail | None = None
    docs: SecurityDocs = SecurityDocs()


class Scenario(Model):
    locustfile: str  # relative to this file
    users: int = Field(10, ge=1)
    spawn_rate: float = Field(10, gt=0)
    duration_s: float = Field(20, gt=0)
    warmup_s: float = Field(2, ge=0)  # left out of the route statistics
    rate: float = Field(0, ge=0)  # >0: constant-rate mode, requests per second per user
    min_requests: int = Field(1, ge=1)
    min_duration_ratio: float = Field(0.9, gt=0, le=1)  # of duration_s the load must have run


class Stress(Model):
    locustfile: str
    steps: list[int] = [1, 2, 4, 8, 16, 32, 64]
    step_s: float = Field(5, gt=0)
    warmup_s: float = Field(1, ge=0)
    p95_ms: float = Field(250, gt=0)  # the SLA a step must hold
    error_budget: float = Field(0.01, ge=0, le=1)
    required_rps: float | None = Field(None, gt=0)  # unset: the previous release's capacity x capacity_tolerance
    capacity_tolerance: float = Field(0.8, gt=0, le=1)  # share of the previous release's capacity to reach


class Sla(Model):
    default: list[str] = ["p(95) < 250ms"]
    routes: dict[str, list[str]] = {}  # "METHOD name" -> thresholds replacing the default
    error_budget: float = Field(0.01, ge=0, le=1)  # total
    route_error_budget: float = Field(0.01, ge=0, le=1)  # each route: no looser than the total (a route failing
    #   2 % of its users is no better than the service failing 2 %), as the stress ramp's 1 %


class Resources(Model):
    cpu_percent: float = Field(80, gt=0)  # service CPU, percent of one core (mean over the load run)
    memory_mb: float = Field(512, gt=0)  # service resident memory (peak)
    memory_growth_mb_per_1000_requests: float = Field(10, gt=0)  # its growth over the measured load (after the
    #   warm-up): a leak long before the peak reaches memory_mb. Healthy: the reference +0.12 (`relcheck run
    #   performance`, 732 requests), Kinto +1.91 (tests/test_kinto.py, 393 requests)
    db_connections: int = Field(50, ge=1)  # connections to the target database (peak)


class Baseline(Model):
    mode: Literal["previous-release", "history", "none"] = "history"
    confidence: float = Field(0.98, gt=0.5, lt=1)
    allowed_increase: float = Field(1.10, ge=1)  # median latency ratio tolerated without a warning
    critical_increase: float = Field(1.30, ge=1)  # above this a significant increase fails
    critical_routes: list[str] = []  # only these can fail the item; default all
    min_samples: int = Field(50, ge=10)
    duration_s: float | None = Field(None, gt=0)  # the previous-release A/B run at most; default performance.load's
    looks: int = Field(4, ge=1, le=12)  # the A/B run in this many equal parts, judged after each; it stops once
    #   every critical route is decided (O'Brien-Fleming levels: early looks are strict, the last is `confidence`)


class Workers(Model):
    """Locust master/workers: the master runs here, `count` workers connect to it, on this host or on load hosts
    through command_prefix (e.g. ["ssh", "loadgen1"], with relcheck installed there)."""

    count: int = Field(ge=1, le=64)
    command_prefix: list[str] = []
    python: str = ""  # the workers' interpreter; default relcheck's
    master_host: str = "127.0.0.1"  # the address the workers reach the master at ...
    master_bind_host: str = "127.0.0.1"  # ... and the one it listens on
    connect_timeout_s: float = Field(30, gt=0)


class Performance(Model):
    load: Scenario
    stress: Stress
    smoke: Scenario | None = None
    sla: Sla = Sla()
    resources: Resources = Resources()
    baseline: Baseline = Baseline()
    processes: int = Field(1, ge=1, le=64)  # locust --processes (scale-out on this host) ...
    workers: Workers | None = None  # ... or master/workers (scale-out across load hosts)
    generator_cpu_limit: float = Field(90, gt=0, le=100)
    # a service on relcheck's host: above this share of the host's CPU taken by other processes during the load run
    # (the median sample), a broken response-time SLA is not verified (the service waited for the CPU), never a pass
    max_other_cpu_percent: float = Field(25, gt=0, le=100)
    max_users: int = Field(500, ge=1)  # safety bounds on every run
    max_duration_s: float = Field(1800, gt=0)

    @model_validator(mode="after")
    def _bounded(self):
        for name in ("load", "smoke"):
            scenario = getattr(self, name)
            if scenario and (scenario.users > self.max_users or scenario.duration_s > self.max_duration_s):
                raise ValueError(
                    f"{name}: exceeds max_users ({self.max_users}) or max_duration_s ({self.max_duration_s:g})"
                )
        if max(self.stress.steps) > self.max_users or len(self.stress.steps) * self.stress.step_s > self.max_duration_s:
            raise ValueError("stress: steps exceed max_users or max_duration_s")
        if self.workers and self.processes > 1:
            raise ValueError("processes and workers: choose one way to scale out")
        return self


class Deploy(Model):
    """How the release is deployed and rolled back (the seed's Deployment and Rollback Procedures)."""

    checkout: str = ""  # the deployed git working tree; the embedded rehearsal uses a clone
    python: str = ""  # the service's interpreter (its virtualenv); default: relcheck's
    command_prefix: list[str] = []  # run the commands on the service host, e.g. ["ssh", "deploy@app1"]
    fetch: list[str] = ["git", "fetch", "--tags", "--quiet"]
    checkout_ref: list[str] = ["git", "checkout", "--quiet", "{ref}"]
    install: list[str] = ["{python}", "-m", "pip", "install", "--quiet", "-r", "requirements.txt"]
    migrate: list[str] = ["{python}", "-m", "alembic", "upgrade", "head"]  # [] = the service has no migrations
    downgrade: list[str] = ["{python}", "-m", "alembic", "downgrade", "{previous_head}"]
    env: dict[str, str] = {}  # install/migrate environment: {dsn} {dsn_host} {dsn_port} {dsn_db} {dsn_user}
    #                                   {dsn_password} are the database the step works on (a scratch copy when
    #                                   rehearsed); nothing else is inherited but PATH, HOME and the locale
    backup_dir: str = ""  # default: <reports>/<release id>/backups (0700; dumps 0600)
    backups_keep: int = Field(5, ge=1)  # dumps kept in backup_dir; older ones are deleted
    schema_version_query: str = "SELECT version_num FROM alembic_version"  # "" when the service has none
    accept_data_loss: bool = False  # relcheck rollback may discard writes made since the backup
    pg_bin_dir: str = ""  # pg_dump/pg_restore matching the server; default: pgserver's, then PATH
    backup_command: list[str] = []  # replaces pg_dump: templates over {pg_dump} {dsn} {dump}; not verified under writes
    supported_postgres: str = ">=13"  # PEP 440 specifier over the server's major.minor
    disk_multiple: float = Field(3.0, gt=0)  # free disk >= multiple x database size
    min_memory_mb: float = Field(256, ge=0)
    max_load_per_core: float = Field(2.0, gt=0)
    min_connection_headroom: int = Field(10, ge=0)
    required_metrics: list[str] = []
    health_timeout_s: float = Field(60, gt=0)
    rehearsal_seed: RequestSpec | None = None  # a write the rehearsal repeats ({n} = 0, 1, ...) for old data
    rehearsal_rows: int = Field(20, ge=1, le=10000)
    # the downgrade rehearsal's writes through the release's own API on the scratch copy, after the upgrade (data the
    # new release wrote, which the down-migration must not lose rows of); embedded target only; default rehearsal_seed
    release_seed: RequestSpec | None = None
    max_blocking_s: float = Field(5, gt=0, allow_inf_nan=False)  # the rehearsed upgrade may lock a table against
    #   reads or writes this long (a finite number of seconds)
    previous_start: list[str] = []  # how the previous release's code is started on the rehearsal's scratch copy (the
    #   rollback choice): templates over {python} {host} {port} {dsn} {dsn_host} ... {log_file}; default on
    #   the embedded target: embedded.start; unset elsewhere: which rollback is safe is not verified
    previous_env: dict[str, str] = {}  # its environment, same templates; default embedded.env (with embedded.start)
    previous_startup_s: float = Field(30, gt=0, allow_inf_nan=False)  # it must answer healthy within this


class Webhook(Model):
    url: str  # Slack-compatible incoming webhook
    timeout_s: float = Field(10, gt=0)


class Smtp(Model):
    host: str
    port: int = 25
    sender: str
    recipients: list[str]
    starttls: bool = False
    user: str = ""
    password: str = ""
    timeout_s: float = Field(10, gt=0)


class Notify(Model):
    window: str = ""  # the release window, as people should read it
    rollback_owner: str = ""  # a role or a person
    webhook: Webhook | None = None
    smtp: Smtp | None = None
    status_board: Webhook | None = None  # a webhook that takes the release status (Slack-compatible JSON)


class CriticalPath(RequestSpec):
    name: str
    expect: int = 200
    require_fields: list[str] = []
    capture: dict[str, str] = {}


class PostDeploy(Model):
    log_patterns: list[str] = [r"\bERROR\b", r"\bCRITICAL\b", r"Traceback \(most recent call last\)"]
    log_allow: list[str] = []  # regexes of error lines that are known and accepted
    init_record: str = ""  # `relcheck init`'s record of its own requests that answered 5xx (it writes this key): an
    #   error line logged while one was in flight is relcheck's doing, shown, not counted
    critical_paths: list[CriticalPath] = []
    conformance_budget_s: float = Field(20, ge=0)  # *Test critical paths* also runs the conformance run's safe
    #   methods (GET, HEAD, OPTIONS, never a write) against the deployed service for this long; 0 = off. A failure
    #   this release's pre-release run found is shown as known, not counted; a new one fails the item
    conformance_phases: list[Literal["examples", "coverage", "fuzzing"]] = ["examples", "coverage"]
    conformance_max_examples: int = Field(1, ge=1)  # cases per operation and phase: a few, not the pre-release run's
    advancing_counters: list[str] = []  # counters that must grow over the critical paths (or Prometheus window)
    smoke_allowed_increase: float = Field(1.5, ge=1)  # smoke p95 vs the pre-deploy smoke's p95, per route ...
    smoke_min_increase_ms: float = Field(10, ge=0)  # ... and by more than this many milliseconds
    since: datetime | None = None  # when this release was deployed, if not by `relcheck deploy` (its record wins):
    #   ISO 8601 with its UTC offset (2026-12-03T08:00:00+05:30). The service log is read from there; unset, from
    #   the service manager's start of the service; neither known: the log is not verified

    @field_validator("since")
    @classmethod
    def _has_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs its UTC offset, e.g. 2026-12-03T08:00:00+05:30 or 2026-12-03T02:30:00Z")
        return value


class Integrity(Model):
    """Data integrity beyond row counts (post-release and post-rollback), read on a read-only session."""

    unchanged_tables: list[str] = []  # tables the release must leave as they were (reference data): their
    #   checksums against the deploy's backup; "schema.table" or a public table's name
    invariants: dict[str, str] = {}  # name = SQL that returns the rows breaking a rule of the data (none: it holds)
    foreign_keys: bool = True  # count rows whose foreign key points at no row (each declared foreign key)


DEFAULT_TRIGGERS = {
    "Critical service failure": [
        "test_service_is_running[post_deploy]",
        "test_health_checks[post_deploy]",
        "test_critical_paths",
        "test_check_logs_for_errors",
        "test_monitor_system_health",
        "test_error_rates[monitoring: Error rates normal]",
    ],
    "Unacceptable performance": [
        "test_monitor_performance",
        "test_verify_metrics_collection",
        "test_response_times[monitoring: Response times]",
        "test_cpu_usage[monitoring]",
        "test_memory_usage[monitoring]",
    ],
    "Data integrity issues": [
        "test_backup_current_system",
        "test_critical_paths",
        "test_contract_enforcement[monitoring]",
    ],
    "Security vulnerabilities": [
        "test_vulnerabilities_addressed",
        "test_security_scan_and_dependency_audit",
        "test_access_controls",
    ],
    "Compliance violations": ["test_audit_logging", "test_data_protection"],
}


class Rollback(Model):
    """Rollback triggers: trigger (as in the checklist) -> relcheck's checks whose failure fires it (test names with
    their parameters); a configured trigger replaces its default mapping, [] switches it off (not verified)."""

    triggers: dict[str, list[str]] = DEFAULT_TRIGGERS

    @field_validator("triggers")
    @classmethod
    def _over_the_defaults(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        """A configured trigger replaces its default mapping; the others keep theirs."""
        return {**DEFAULT_TRIGGERS, **value}


class Ratio(Model):
    """A success ratio from a counter with an outcome label: good / (good + bad)."""

    counter: str  # e.g. "kundli_calculations_total"
    label: str = "result"
    good: str = "ok"
    minimum: float = Field(0.99, ge=0, le=1)


class GoldenCase(Model):
    """A known input whose detected patterns are known (pattern-detection accuracy)."""

    create: RequestSpec  # makes the object (answer has object_field)
    detect: RequestSpec  # reads the patterns; {id} is the created object
    object_field: str = "id"
    list_field: str  # the list of detected patterns in the answer
    name_field: str = "name"
    expect: list[str]


class MonitoringSource(Model):
    """Where window readings come from: two scrapes of the service's own metrics, or a Prometheus server (PromQL
    over `window`; `service_selector` picks the service's series, e.g. 'job="kundli"')."""

    kind: Literal["scrape", "prometheus"] = "scrape"
    url: str = ""
    bearer_token: str = ""  # e.g. "env:PROMETHEUS_TOKEN"
    username: str = ""
    password: str = ""
    ca_file: str = ""
    window: str = Field("10m", pattern=r"^\d+[smhd]$")
    service_selector: str = ""
    baseline_selector: str = ""  # the previous release's instances (canary analysis); default: none
    canary_error_increase: float = Field(0.01, ge=0, le=1)  # 5xx share above the previous release's tolerated
    host_selector: str = ""  # node_exporter's series of the service host, e.g. 'job="node",instance="app1:9100"'
    step_s: float = Field(15, gt=0)  # the canary's range step and rate window: at least twice the scrape interval
    queries: dict[str, str] = {}  # reading -> PromQL replacing the default ({service}, {window} placeholders)
    timeout_s: float = Field(10, gt=0)

    @model_validator(mode="after")
    def _prometheus_needs_its_address(self):
        if self.kind == "prometheus" and not (self.url and self.service_selector):
            raise ValueError("a prometheus source needs url and service_selector")
        return self


class Monitoring(Model):
    """The Monitoring section (and the post-release monitoring tasks): the live service's own metrics, read after a
    little synthetic traffic."""

    source: MonitoringSource = MonitoringSource()

    request_counter: str = ""  # requests by route and status, e.g. "kundli_http_requests_total"
    status_label: str = "status"
    route_labels: list[str] = ["method", "route"]
    latency_histogram: str = ""  # e.g. "kundli_http_request_duration_seconds"
    probe_rounds: int = Field(3, ge=0)  # rounds of the critical paths run as synthetic traffic first
    sample_s: float = Field(2, gt=0)  # CPU is a rate over this window
    cpu_percent: float = Field(80, gt=0)
    memory_mb: float = Field(512, gt=0)
    min_free_disk_percent: float = Field(10, ge=0, le=100)
    max_health_rtt_ms: float = Field(500, gt=0)
    min_rps: float | None = Field(None, gt=0)  # request rate bounds over the window; unset: not verified
    max_rps: float | None = Field(None, gt=0)
    error_budget: float = Field(0.01, ge=0, le=1)  # 5xx share
    route_error_budget: float = Field(0.05, ge=0, le=1)  # 5xx share per route
    p95_ms: float | None = Field(None, gt=0)  # the latency limit of every route (your SLA); unset: not verified
    route_p95_ms: dict[str, float] = {}  # "METHOD route" -> limit (replaces p95_ms for that route)
    min_route_requests: int = Field(5, ge=1)  # a route with fewer requests is shown (a warning), not judged
    cache_hits: str = ""  # counters for the cache hit rate
    cache_misses: str = ""
    min_cache_hit_rate: float | None = Field(None, gt=0, le=1)  # unset: not verified (0 could never fail)
    queue_gauges: list[str] = []
    max_queue: float = Field(100, ge=0)
    connection_gauges: list[str] = []
    max_connections: float = Field(50, ge=0)
    calculations: Ratio | None = None
    validations: Ratio | None = None
    contract_violations: str = ""  # a counter that must stay at zero
    correlation_route: str = ""  # "METHOD route" whose p95 is the correlation analysis performance
    correlation_p95_ms: float = Field(250, gt=0)
    golden: list[GoldenCase] = []
    min_detection_accuracy: float = Field(1.0, ge=0, le=1)


class SignoffPolicy(Model):
    roles: list[str]  # roles of signoff.roles who may sign the run's statement ...
    required: int = Field(1, ge=1)  # ... and how many of them must


class Signoff(Model):
    allowed_signers: str = ""  # an OpenSSH allowed_signers file (principal, key), relative to this file
    report: str = "pre_release"  # the run whose report the roles sign
    roles: dict[str, list[str]] = {}  # role (as in the checklist) -> principals who may sign as it
    policy: dict[str, SignoffPolicy] = {}  # run label (e.g. "pre_release") -> who must sign its statement (N of M)

    @model_validator(mode="after")
    def _policy_names_roles(self):
        for run, policy in self.policy.items():
            unknown = [r for r in policy.roles if r not in self.roles]
            if unknown:
                raise ValueError(f"policy.{run}: {', '.join(unknown)} not in signoff.roles")
            if policy.required > len(policy.roles):
                raise ValueError(f"policy.{run}: required {policy.required} of only {len(policy.roles)} roles")
        return self


class ApiContract(Model):
    breaking: Literal["fail", "warn"] = "fail"  # a breaking change against the previous release without a version bump
    release_notes_exempt: bool = True  # ... is accepted when this release's notes (docs.changelog) name it: a property
    #   or parameter in backticks (`nakshatra`), any other change its operation ("DELETE /v1/kundli/{chart_id}")
    version_prefix: str = r"^/v(\d+)(?:/|$)"  # regex: group 1 of a path is its API version (/v1 -> /v2 is a bump)

    @field_validator("version_prefix")
    @classmethod
    def _one_group(cls, value: str) -> str:
        return regex_with_a_group(value, "needs a group capturing the version number, e.g. ^/v(\\d+)/")


class Docs(Model):
    openapi_file: str = ""  # committed OpenAPI document (JSON or YAML), relative to target.source
    api: ApiContract = ApiContract()
    required: list[str] = ["README.md"]
    placeholders: list[str] = ["TODO", "TBD", "FIXME", "XXX", "[Contact]"]
    changelog: str = "CHANGELOG.md"
    deployment_guide: str = ""
    deploy_commands: list[str] = []  # must appear in the guide; templates over {version} {ref} {head}
    migration_head: list[str] = []  # command printing the schema head, e.g. ["{python}", "-m", "alembic", "heads"]
    config_guide: str = ""
    settings_pattern: str = ""  # regex finding a setting's name in code and guide
    settings_code_paths: list[str] = []
    troubleshooting_guide: str = ""
    error_codes_pointer: str = ""  # JSON pointer into the live OpenAPI listing the error codes


class Config(Model):
    release: Release
    target: Target
    embedded: Embedded | None = None
    quality: Quality = Quality()
    security: Security = Security()
    docs: Docs = Docs()
    performance: Performance | None = None
    contacts: str = ""  # the target's emergency contacts document, relative to target.source
    deploy: Deploy = Deploy()
    notify: Notify = Notify()
    post_deploy: PostDeploy = PostDeploy()
    integrity: Integrity = Integrity()
    rollback: Rollback = Rollback()
    signoff: Signoff = Signoff()
    monitoring: Monitoring = Monitoring()
    checklist: str = ""  # another checklist file; default: the shipped seed
    reports: str = "reports"
    base_dir: str = ""  # relative paths in the config resolve here; default: the config file's directory
    path: Path = Path("relcheck.toml")

    @field_validator("base_dir")
    @classmethod
    def _absolute_base(cls, value: str) -> str:
        if value and not Path(value).is_absolute():
            raise ValueError("must be an absolute directory")
        return value

    @model_validator(mode="after")
    def _embedded_needs_recipe(self):
        if self.target.mode == "embedded" and self.embedded is None:
            raise ValueError("embedded: section required when target.mode is 'embedded'")
        return self

    @property
    def base(self) -> Path:
        return Path(self.base_dir) if self.base_dir else self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to base_dir (default: the config file's directory)."""
        path = Path(relative)
        return path if path.is_absolute() else (self.base / path).resolve()

    @property
    def source(self) -> Path:
        return self.resolve(self.target.source)

    @property
    def deployed_tree(self) -> Path:
        """Where deploy and rollback commands run: deploy.checkout (else target.source), in its app_dir. A checkout
        on the service host (deploy.command_prefix) is its path there, not resolved here."""
        d = self.deploy
        if not d.checkout:
            return self.in_app(self.source)
        return self.in_app(Path(d.checkout) if d.command_prefix else self.resolve(d.checkout))

    def in_app(self, tree: Path) -> Path:
        """Where commands run in a tree of the service (its app_dir)."""
        return tree / self.target.app_dir if self.target.app_dir else tree

    def python(self, specific: str = "") -> str:
        """The interpreter for a step: its own setting, else target.python, else the one running relcheck."""
        return specific or (str(self.resolve(self.target.python)) if self.target.python else sys.executable)

    @property
    def repository(self) -> Path:
        return self.resolve(self.target.repository or self.target.source)

    @property
    def reports_dir(self) -> Path:
        return self.resolve(self.reports)


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("RELCHECK_CONFIG") or DEFAULT_PATH)


def load(path: str | os.PathLike | None = None, overrides: dict | None = None) -> Config:
    """Read and validate a config file (explicit path, else $RELCHECK_CONFIG, else ./relcheck.toml)."""
    path = config_path(path)
    name = path.name
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    data = _merge(data, overrides or {})
    from_env: dict[str, str] = {}
    data = _resolve_secrets(data, name, (), from_env)
    data["path"] = path.resolve()
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(name, exc, from_env)) from None


def _merge(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = (
            _merge(merged.get(key, {}), value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


def _resolve_secrets(value, name: str, where: tuple, from_env: dict[str, str]):
    """env:NAME values replaced by the variable's value; from_env records where each came from (dotted key ->
    NAME), so that an error about such a key never shows the value."""
    if isinstance(value, dict):
        return {k: _resolve_secrets(v, name, where + (k,), from_env) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_secrets(v, name, where + (str(i),), from_env) for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("env:"):
        from_env[".".join(where)] = value[4:]
    try:
        return secrets.resolve(value)
    except secrets.SecretError as exc:
        raise ConfigError(f"{name}: {'.'.join(where)}: {exc}") from None


def _problems(name: str, exc: ValidationError, from_env: dict[str, str]) -> str:
    """Every problem, one line each: "<file>: <key>: <problem>"."""
    return "\n".join(_one_line(name, error, from_env) for error in exc.errors())


def _one_line(name: str, error, from_env: dict[str, str]) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    env = next((var for key, var in from_env.items() if key == loc or loc.startswith(key + ".")), None)
    if error["type"] == "extra_forbidden":
        problem = "unknown key"
    elif error["type"] == "missing":
        problem = "required key is missing"
    else:
        problem = error["msg"].removeprefix("Value error, ")
        if env:  # a value from the environment may be a secret: name the variable, never the value
            problem += f" (got the value of ${env})"
        elif "input" in error and not isinstance(error["input"], (dict, list)):
            problem += f" (got {error['input']!r})"
    return f"{name}: {loc + ': ' if loc else ''}{problem}"
