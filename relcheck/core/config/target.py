"""[release], [target], [embedded]: what is released and where it runs; the requests the suite makes."""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from relcheck.core.config.base import LOOPBACK, SAFE_NAME, Model, regex_with_a_group


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
