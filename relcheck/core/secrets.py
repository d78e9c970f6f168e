"""Secrets: config values written as "env:NAME" are read from the environment, and every secret value the
suite learns (DSN passwords, tokens) is masked in anything it writes."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_known: set[str] = set()
_DSN_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]+:)([^@\s]+)(@)")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")


class SecretError(ValueError):
    """An "env:NAME" value names an environment variable that is not set."""


def resolve(value: str) -> str:
    """ "env:NAME" -> the value of $NAME (registered as a secret); anything else unchanged."""
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise SecretError(f"environment variable {name} is not set")
        secret = os.environ[name]
        register(secret)
        return secret
    return value


def register(*secrets: str | None) -> None:
    for secret in secrets:
        if secret and len(secret) >= 4:
            _known.add(secret)


def register_dsn(dsn: str) -> None:
    password = urlsplit(dsn).password if "://" in dsn else None
    register(password)


def redact(text: str) -> str:
    """Mask registered secrets, DSN passwords and bearer tokens."""
    if not text:
        return text
    for secret in sorted(_known, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _DSN_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)
    return _BEARER.sub(rf"\g<1>{MASK}", text)


def safe_url(url: str) -> str:
    """A URL or DSN fit for display: the password masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@")
    return urlunsplit(parts._replace(netloc=netloc))
