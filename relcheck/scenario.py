"""What a Locust scenario run by relcheck receives: API tokens per role and the target's auth header and scheme
(target.auth), and the pacing (constant-rate or think time). Importing it also registers relcheck's exact-latency
recorder, which refuses hosts outside the allow-list.

    from relcheck.scenario import auth, pacing
    self.client.get("/items", headers=auth("viewer"))
"""

from __future__ import annotations

import json
import os

from locust import between, constant_throughput

import relcheck.probes.locustrec  # noqa: F401  (records exact latencies; refuses hosts outside the allow-list)

TOKENS: dict[str, str] = json.loads(os.environ.get("RELCHECK_TOKENS", "{}"))
BASELINE_TOKENS: dict[str, str] = json.loads(os.environ.get("RELCHECK_BASELINE_TOKENS", "{}"))
AUTH_HEADER = os.environ.get("RELCHECK_AUTH_HEADER", "Authorization")
AUTH_SCHEME = os.environ.get("RELCHECK_AUTH_SCHEME", "Bearer")


def auth(role: str, tokens: dict[str, str] | None = None) -> dict[str, str]:
    """The credentials header for a role ({} for anonymous or a role without a token)."""
    tokens = TOKENS if tokens is None else tokens
    return {AUTH_HEADER: f"{AUTH_SCHEME} {tokens[role]}".strip()} if role in tokens else {}


def pacing(default):
    """Constant-rate mode when RELCHECK_RATE is set (limits coordinated omission), else think time."""
    if os.environ.get("RELCHECK_RATE"):
        return constant_throughput(float(os.environ["RELCHECK_RATE"]))
    if os.environ.get("RELCHECK_WAIT"):
        low, high = (float(x) for x in os.environ["RELCHECK_WAIT"].split(","))
        return between(low, high)
    return default
