"""Data protection evidence: security headers, server banners, hashed credentials at rest, secrets and PII in
answers and logs, and TLS for https targets."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import ssl
import time
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
    conn, columns: list[str], formats: list[str], known_secrets: dict[str, str], limit: int = 1000
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


UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
# 13-19 digits, whole or in groups of 4 (4-6-5 for Amex); not a piece of a longer number, a word, a path or a decimal
CARD = re.compile(
    r"(?<![\w+/.#-])(?<!\d[.,])"
    r"(\d{13,19}|\d{4}([ -])\d{4}\2\d{4}\2\d{1,7}|\d{4}([ -])\d{6}\3\d{4,5})"
    r"(?!\w|[.,]\d|[ -]\d)"
)
EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
KEY_BEFORE = re.compile(r"([A-Za-z_][\w-]*)[\"']?\s*[:=]\s*[\"']?$")  # `order_id=`, `"ts": ` right before a value
IN_TAG = re.compile(r"<[A-Za-z][\w:-]*\s[^<>]*$")  # inside an HTML start tag: an attribute's value


def luhn(digits: str) -> bool:
    total = sum(int(d) if i % 2 == 0 else sum(divmod(int(d) * 2, 10)) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0 and len(set(digits)) > 1


def looks_like_time(digits: str) -> bool:
    """Epoch seconds in ms, µs or ns between 2001 and two years from now, or a compact yyyymmddHHMMSS… stamp."""
    latest = time.time() + 2 * 365 * 86400
    if any(1e9 <= int(digits) / scale <= latest for scale in (1e3, 1e6, 1e9)):
        return True
    try:
        return 2000 <= datetime.strptime(digits[:14], "%Y%m%d%H%M%S").year <= 2100
    except ValueError:
        return False


def is_id_field(key: str, words: frozenset[str]) -> bool:
    """order_id, orderId, created-at, ts: a field whose last word names an id or a time."""
    parts = re.split(r"[_.\-]|(?<=[a-z0-9])(?=[A-Z])", key)
    return bool(key) and parts[-1].lower() in words


def masked_card(digits: str) -> str:
    middle = "*" * (len(digits) - 8)
    return " ".join([digits[:4], *(middle[i : i + 4] for i in range(0, len(middle), 4)), digits[-4:]])


def masked_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[0]}***@{domain}"


@dataclass
class LeakRules:
    """What counts as a leak (security.data_protection) and the values that must never show (value -> kind)."""

    secrets: dict[str, str]
    cards: bool = True
    emails: bool = True
    id_words: frozenset[str] = frozenset()
    patterns: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, cfg, secrets: dict[str, str]) -> LeakRules:
        return cls(secrets, cfg.card_numbers, cfg.email_addresses, frozenset(cfg.id_field_words), cfg.pii_patterns)

    def problems(self, text: str, key: str = "", emails: bool = True) -> list[str]:
        """What one piece of text (a line, a JSON value under `key`) leaks, each value masked."""
        found = [f"contains {kind}" for value, kind in self.secrets.items() if value and value in text]
        if self.cards and not is_id_field(key, self.id_words):
            plain = UUID.sub(lambda m: "x" * len(m[0]), text)  # a UUID's digits are no card number
            for match in CARD.finditer(plain):
                digits = re.sub(r"\D", "", match[1])
                before = KEY_BEFORE.search(plain[max(0, match.start() - 40) : match.start()])
                if (
                    luhn(digits)
                    and not (match[1].isdigit() and looks_like_time(digits))
                    and not (before and is_id_field(before[1], self.id_words))
                ):
                    found.append(f"contains a card number ({masked_card(digits)})")
        if self.emails and emails:
            found += [
                f"contains an e-mail address ({masked_email(m[0])})"
                for m in EMAIL.finditer(text)
                if not IN_TAG.search(text[max(0, m.start() - 500) : m.start()])
            ]
        for name, pattern in self.patterns.items():
            found += [f"contains {name} ({m[0][:1]}***)" for m in re.finditer(pattern, text)]
        return found


def text_leaks(where: str, lines: list[tuple[int, str]], rules: LeakRules, emails: bool = True) -> list[Finding]:
    """Leaks in numbered lines, each finding naming its line."""
    return [Finding(f"{where} line {n}", problem) for n, line in lines for problem in rules.problems(line, "", emails)]


def json_leaks(where: str, document, rules: LeakRules, emails: bool = True) -> list[Finding]:
    """Leaks in a JSON document's names and values, each finding naming its JSON pointer; a value's field name
    decides whether it is an id or a time (never a card number)."""
    found: list[Finding] = []

    def walk(node, pointer: str, key: str) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                leaked = rules.problems(str(name), "", emails)  # a name that leaks is shown as "*" in pointers
                inner = f"{pointer}/{'*' if leaked else str(name).replace('~', '~0').replace('/', '~1')}"
                found.extend(Finding(f"{where} {inner} (a field name)", p) for p in leaked)
                walk(value, inner, str(name))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{pointer}/{index}", key)
        elif isinstance(node, (str, int)) and not isinstance(node, bool):
            found.extend(Finding(f"{where} {pointer or '/'}", p) for p in rules.problems(str(node), key, emails))

    walk(document, "", "")
    return found


def answer_leaks(answer: Answer, rules: LeakRules, documentation: bool) -> list[Finding]:
    """Leaks in an answer's headers and body (JSON by pointer, else by line); e-mail addresses on documentation
    pages are examples and contacts, not leaks."""
    where, emails = f"answer to {answer.method} {urlsplit(answer.url).path}", not documentation
    found = [
        Finding(f"{where} header {name}", problem)
        for name, value in answer.headers.items()
        for problem in rules.problems(value, name, emails)
    ]
    try:
        document = json.loads(answer.text)
    except ValueError:
        return found + text_leaks(where, list(enumerate(answer.text.splitlines(), 1)), rules, emails)
    return found + json_leaks(where, document, rules, emails)


def is_documentation(path: str, documentation_paths: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in documentation_paths)


def tls_findings(base_url: str, minimum: str, timeout: float, cafile: str | None = None) -> tuple[list[Finding], dict]:
    """For https targets: certificate verifies, the negotiated protocol is at least `minimum`, and a client
    limited to below `minimum` is refused."""
    parts = urlsplit(base_url)
    if parts.scheme != "https":
        return [], {"TLS": "not applicable (plain http target)"}
    host, port = parts.hostname, parts.port or 443
    order = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    facts: dict[str, str] = {}
    found: list[Finding] = []
    context = ssl.create_default_context(cafile=cafile)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            facts["protocol"] = str(tls.version())  # None only before a handshake
            facts["certificate expires"] = str((tls.getpeercert() or {}).get("notAfter", "?"))
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
    rules = LeakRules.of(cfg, secrets)
    for probe in cfg.probes:
        answer = send(target, probe, base_values())
        if answer.status is None:
            not_checked.append(f"probe got no answer: {answer.describe()}")
            continue
        findings += header_findings(
            answer, cfg.required_headers, cfg.frame_protection, cfg.forbidden_headers, cfg.server_banner_pattern, https
        )
        findings += answer_leaks(answer, rules, is_documentation(probe.path, cfg.documentation_paths))
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
            findings += text_leaks(f"service log ({log.source})", [(x.number, x.text) for x in log.lines], rules)
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
