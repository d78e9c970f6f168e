"""[security]: bandit, the dependency audit, access rules, data protection, the audit trail, security docs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from relcheck.core.config.base import Model
from relcheck.core.config.target import RequestSpec, SetupStep


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
