"""[deploy], [notify], [post_deploy], [integrity], [rollback]: the window's procedures and their checks."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from relcheck.core.config.base import Model
from relcheck.core.config.target import RequestSpec


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
