"""relcheck.toml: the suite's configuration, validated on load.

Any string value may be written "env:NAME" to read it from the environment (for secrets). Relative paths are
relative to the config file. A bad file raises ConfigError naming every problem, one line each (key and problem).
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from pydantic import ValidationError, field_validator, model_validator

from relcheck.core import secrets
from relcheck.core.config.base import (  # noqa: F401
    DEFAULT_PATH,
    IN_CHECKOUT,
    LOOPBACK,
    REPO,
    SAFE_NAME,
    ConfigError,
    Model,
    regex_with_a_group,
)
from relcheck.core.config.deploy import (  # noqa: F401
    DEFAULT_TRIGGERS,
    CriticalPath,
    Deploy,
    Integrity,
    Notify,
    PostDeploy,
    Rollback,
    Smtp,
    Webhook,
)
from relcheck.core.config.docs import ApiContract, Docs  # noqa: F401
from relcheck.core.config.monitoring import GoldenCase, Monitoring, MonitoringSource, Ratio  # noqa: F401
from relcheck.core.config.performance import Baseline, Performance, Resources, Scenario, Sla, Stress, Workers  # noqa: F401
from relcheck.core.config.quality import (  # noqa: F401
    CONFORMANCE_CHECKS,
    SCHEMATHESIS_CHECKS,
    ApiConformance,
    Coverage,
    DocsFollowCode,
    GitHubApi,
    Quality,
    Review,
    TargetTests,
    Tracker,
)
from relcheck.core.config.security import (  # noqa: F401
    Access,
    AccessRule,
    AuditTrail,
    Bandit,
    DataProtection,
    Dependencies,
    Security,
    SecurityDocs,
)
from relcheck.core.config.signoff import Signoff, SignoffPolicy  # noqa: F401
from relcheck.core.config.target import (  # noqa: F401
    Auth,
    Embedded,
    Release,
    RequestSpec,
    Routes,
    Service,
    SetupStep,
    Target,
    VersionSource,
)


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
