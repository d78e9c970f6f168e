"""Data protection evidence: security headers, server banners, hashed credentials at rest, secrets and PII in
answers and logs, and TLS for https targets."""

from __future__ import annotations

import dataclasses
import re
import socket
import ssl
import warnings
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from psycopg import sql

from relcheck.core.errors import RelcheckError
from relcheck.core.statuses import NotVerified
from relcheck.target import logs
from relcheck.target.http import Answer
from relcheck.target.request_specs import base_values, send
from relcheck.target.target import Target


@dataclass
class Finding:
    where: str
    problem: str


def header_findings(
    answer: Answer,
    required: dict[str, str],
    frame_protection: bool,
    forbidden: list[str],
    banner_pattern: str,
    https: bool,
) -> list[Finding]:
    headers = {k.lower(): v for k, v in answer.headers.items()}
    where = f"{answer.method} {urlsplit(answer.url).path}"
    found = []
    for name, pattern in required.items():
        value = headers.get(name.lower())
        if value is None:
            found.append(Finding(where, f"missing header {name}"))
        elif pattern and not re.search(pattern, value, re.I):
            found.append(Finding(where, f"header {name}: {value!r} does not match {pattern!r}"))
    if (
        frame_protection
        and "frame-ancestors" not in headers.get("content-security-policy", "")
        and "x-frame-options" not in headers
    ):
        found.append(Finding(where, "no frame protection (CSP frame-ancestors or X-Frame-Options)"))
    if https and "strict-transport-security" not in headers:
        found.append(Finding(where, "missing header Strict-Transport-Security on https"))
    for name in forbidden:
        if name.lower() in headers:
            found.append(Finding(where, f"reveals {name}: {headers[name.lower()]}"))
    server = headers.get("server")
    if server and banner_pattern and re.search(banner_pattern, server):
        found.append(Finding(where, f"server banner reveals detail: {server}"))
    return found


def unhashed_values(
    conn, columns: list[str], formats: list[str], known_secrets: set[str], limit: int = 1000
) -> tuple[list[Finding], int]:
    """Values in sensitive columns that are not in a recognised hash format (or equal a known secret)."""
    patterns = [re.compile(f) for f in formats]
    findings, seen = [], 0
    for column in columns:
        table, name = column.rsplit(".", 1)
        query = sql.SQL("SELECT {col}::text FROM {table} WHERE {col} IS NOT NULL LIMIT {limit}").format(
            col=sql.Identifier(name), table=sql.Identifier(*table.split(".")), limit=sql.Literal(limit)
        )
        for (value,) in conn.execute(query).fetchall():
            seen += 1
            if value in known_secrets:
                findings.append(Finding(column, "holds a live API token in plain text"))
            elif not any(p.search(value) for p in patterns):
                findings.append(Finding(column, f"value not in a recognised hash format ({value[:6]}…)"))
    return findings, seen


def leaks(where: str, text: str, secrets: set[str], pii: dict[str, str]) -> list[Finding]:
    found = [Finding(where, "contains a secret (an API token or password)") for s in secrets if s and s in text]
    for name, pattern in pii.items():
        match = re.search(pattern, text)
        if match:
            found.append(Finding(where, f"contains {name}"))
    return found


def tls_findings(base_url: str, minimum: str, timeout: float, cafile: str | None = None) -> tuple[list[Finding], dict]:
    """For https targets: certificate verifies, the negotiated protocol is at least `minimum`, and a client
    limited to below `minimum` is refused."""
    parts = urlsplit(base_url)
    if parts.scheme != "https":
        return [], {"TLS": "not applicable (plain http target)"}
    host, port = parts.hostname, parts.port or 443
    order = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    facts, found = {}, []
    context = ssl.create_default_context(cafile=cafile)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            facts["protocol"] = tls.version()
            facts["certificate expires"] = tls.getpeercert().get("notAfter", "?")
    except ssl.SSLCertVerificationError as exc:
        return [Finding(base_url, f"certificate does not verify: {exc.verify_message}")], facts
    except OSError as exc:
        return [Finding(base_url, f"TLS handshake failed: {exc}")], facts
    if order.index(facts["protocol"]) < order.index(minimum):
        found.append(Finding(base_url, f"negotiated {facts['protocol']}, below {minimum}"))
    weaker = order[order.index(minimum) - 1] if order.index(minimum) > 0 else None
    if weaker:
        legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        legacy.check_hostname, legacy.verify_mode = False, ssl.CERT_NONE
        try:
            with warnings.catch_warnings():  # asking for an old protocol is the point here
                warnings.simplefilter("ignore", DeprecationWarning)
                legacy.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
                legacy.maximum_version = getattr(ssl.TLSVersion, weaker.replace(".", "_"))
            with (
                socket.create_connection((host, port), timeout=timeout) as raw,
                legacy.wrap_socket(raw, server_hostname=host) as tls,
            ):
                found.append(Finding(base_url, f"accepts {tls.version()}"))
        except (ssl.SSLError, OSError):
            facts[f"{weaker} refused"] = "yes"
    return found, facts


@dataclass
class Inspection:
    findings: list[Finding]
    scope: dict  # what was looked at, for the evidence
    not_checked: list[str] = dataclasses.field(default_factory=list)  # parts that could not be looked at


def inspect(target: Target, cfg, deploy_started: datetime | None, timeout: float, ca_file: str | None) -> Inspection:
    """Every data-protection source of security.data_protection (cfg): probe answers, credential columns, the
    service log of this release (logs.since_deploy), TLS (verified with ca_file, resolved by the caller, else the
    system's CAs)."""
    https, secrets, findings, not_checked = target.base_url.startswith("https://"), target.known_secrets(), [], []
    for probe in cfg.probes:
        answer = send(target, probe, base_values())
        if answer.status is None:
            not_checked.append(f"probe got no answer: {answer.describe()}")
            continue
        findings += header_findings(
            answer, cfg.required_headers, cfg.frame_protection, cfg.forbidden_headers, cfg.server_banner_pattern, https
        )
        text = "\n".join(f"{k}: {v}" for k, v in answer.headers.items()) + "\n" + answer.text
        findings += leaks(f"answer to {probe.method} {probe.path}", text, secrets, cfg.pii_patterns)
    checked_values = 0
    if cfg.hashed_columns:
        with target.database() as conn:
            hashed, checked_values = unhashed_values(conn, cfg.hashed_columns, cfg.hash_formats, secrets)
        findings += hashed
    log_scope = "no"
    if cfg.scan_log:
        try:
            log = logs.since_deploy(target, deploy_started)
        except (RelcheckError, NotVerified) as exc:  # unreadable, no log configured, or no known deploy time
            not_checked.append(f"the service log is not scanned: {exc}")
            log_scope = "not scanned"
        else:
            log_text = "\n".join(line.text for line in log.lines)
            findings += leaks(f"service log ({log.source})", log_text, secrets, cfg.pii_patterns)
            log_scope = f"since {log.since:%Y-%m-%d %H:%M:%S %Z} ({log.since_from}); timestamps {log.timestamps}"
    tls, tls_facts = tls_findings(target.base_url, cfg.min_tls, timeout, ca_file)
    findings += tls
    if not https and not cfg.allow_plain_http:
        findings.append(Finding(target.base_url, "plain http: data in transit is not encrypted"))
    scope = {
        "probes": len(cfg.probes),
        "credential columns": ", ".join(cfg.hashed_columns) or "none",
        "credential values checked": checked_values,
        "service log scanned": log_scope,
        "plain http": "allowed (internal-only service)"
        if not https and cfg.allow_plain_http
        else "no"
        if https
        else "not allowed",
        **tls_facts,
    }
    return Inspection(findings, scope, not_checked)
