"""relcheck.toml: the suite's configuration, validated on load.

Any string value may be written "env:NAME" to read it from the environment (for secrets). Relative paths are
relative to the config file. A bad file raises ConfigError with one line naming the key and the problem.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import secrets

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PATH = REPO / "relcheck.toml"


class ConfigError(ValueError):
    """The configuration cannot be used; the message is one line naming the file, key and problem."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Release(Model):
    product: str
    version: str
    previous_version: str = ""
    ref: str = ""                 # git ref of this release; default "v<version>"
    previous_ref: str = ""        # default "v<previous_version>"
    id: str = ""                  # links the runs of one release; default "<product>-<version>"

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
    version: str = "/version"
    metrics: str = "/metrics"
    openapi: str = "/openapi.json"


class Service(Model):
    manager: Literal["process", "systemd", "none"] = "process"
    unit: str = ""
    command_prefix: list[str] = []    # e.g. ["ssh", "ops@app1"] to run systemctl/journalctl on the service host
    log_file: str = ""
    journal_unit: str = ""


class Auth(Model):
    header: str = "Authorization"
    scheme: str = "Bearer"
    tokens: dict[str, str] = {}       # role -> token; provisioned automatically for the embedded target


class Target(Model):
    mode: Literal["embedded", "remote"]
    base_url: str = ""
    dsn: str = ""
    admin_dsn: str = ""               # for scratch databases (restore proofs, target tests); default: dsn
    source: str                       # the service's working tree: tests, docs, requirements, code
    repository: str = ""              # its git history (a repository or a bundle); default: source
    allowed_hosts: list[str] = ["127.0.0.1", "localhost", "::1"]
    request_timeout_s: float = Field(10, gt=0)
    routes: Routes = Routes()
    service: Service = Service()
    auth: Auth = Auth()

    @model_validator(mode="after")
    def _remote_needs_address(self):
        if self.mode == "remote" and not self.base_url:
            raise ValueError("base_url: required when mode is 'remote'")
        return self


class Embedded(Model):
    """How to run the bundled service: commands are templates over {python} {host} {port} {dsn} {log_file} {role}."""
    python: str = ""                  # interpreter for the service; default: the one running relcheck
    database: str = "kundli_db"
    user: str = "kundli"
    start: list[str]
    migrate: list[str]
    provision: list[str]              # prints an API token for {role}
    roles: list[str] = ["viewer", "operator", "admin"]
    env: dict[str, str] = {}
    fault_env: dict[str, str] = {}    # added when faults are set; {faults} is their JSON
    faults: dict[str, Any] = {}
    startup_timeout_s: float = Field(30, gt=0)


class TargetTests(Model):
    command: list[str]                # [PYTHON, "-m", MODULE, ...]; templates over {python} and {scratch_dsn}
    python: str = ""                  # interpreter with the target's test dependencies; default: relcheck's
    env: dict[str, str] = {}
    junit_option: str = "--junitxml={junit}"
    timeout_s: float = Field(600, gt=0)
    max_skipped: int = Field(0, ge=0)
    scratch_database: str = "relcheck_target_tests"


class Coverage(Model):
    threshold_percent: float = Field(95.0, ge=0, le=100)   # total coverage must exceed this
    branch: bool = True
    source: list[str] = []
    least_covered: int = Field(5, ge=0)


class Quality(Model):
    tests: TargetTests
    coverage: Coverage = Coverage()


class Config(Model):
    release: Release
    target: Target
    embedded: Embedded | None = None
    quality: Quality
    checklist: str = ""               # another checklist file; default: the shipped seed
    reports: str = "reports"
    path: Path = Path("relcheck.toml")

    @model_validator(mode="after")
    def _embedded_needs_recipe(self):
        if self.target.mode == "embedded" and self.embedded is None:
            raise ValueError("embedded: section required when target.mode is 'embedded'")
        return self

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the config file."""
        path = Path(relative)
        return path if path.is_absolute() else (self.path.parent / path).resolve()

    @property
    def source(self) -> Path:
        return self.resolve(self.target.source)

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
    data = _resolve_secrets(data, name, ())
    data["path"] = path.resolve()
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(name, exc)) from None


def _merge(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merge(merged.get(key, {}), value) if isinstance(value, dict) and \
            isinstance(merged.get(key), dict) else value
    return merged


def _resolve_secrets(value, name: str, where: tuple):
    if isinstance(value, dict):
        return {k: _resolve_secrets(v, name, where + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_secrets(v, name, where + (str(i),)) for i, v in enumerate(value)]
    try:
        return secrets.resolve(value)
    except secrets.SecretError as exc:
        raise ConfigError(f"{name}: {'.'.join(where)}: {exc}") from None


def _one_line(name: str, exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        problem = "unknown key"
    elif first["type"] == "missing":
        problem = "required key is missing"
    else:
        problem = first["msg"].removeprefix("Value error, ")
        if "input" in first and not isinstance(first["input"], (dict, list)):
            problem += f" (got {first['input']!r})"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{name}: {loc + ': ' if loc else ''}{problem}{more}"
