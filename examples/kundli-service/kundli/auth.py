"""Roles, password and token hashing, bearer-token authentication."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

ROLES = ("viewer", "operator", "admin")
PBKDF2_ITERATIONS = 600_000


def role_allows(role: str, required: str) -> bool:
    """Roles are ordered: admin can do what operator can, operator what viewer can."""
    return ROLES.index(role) >= ROLES.index(required)


def hash_password(password: str) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), PBKDF2_ITERATIONS).hex()
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt}${digest}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations)).hex()
    return hmac.compare_digest(candidate, digest)


def new_token() -> str:
    return "kst_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class TokenCache:
    """Remembers token-hash -> user for a few seconds to spare a database round trip per request."""

    def __init__(self, ttl_seconds: int) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[str, tuple[float, dict]] = {}

    def get(self, key: str) -> dict | None:
        entry = self._entries.get(key)
        if entry and entry[0] > time.monotonic():
            return entry[1]
        self._entries.pop(key, None)
        return None

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def put(self, key: str, user: dict) -> None:
        if self.ttl > 0:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl, user)
