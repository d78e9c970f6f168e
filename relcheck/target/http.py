"""HTTP to the target: one exchange is an Answer; a client that never raises for HTTP or network errors.

answer = Http("http://127.0.0.1:8000", 10, {"viewer": token}, "Authorization", "Bearer").get("/health")
assert answer.ok
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests

from relcheck.core.errors import TargetError
from relcheck.core.statuses import NotVerified


@dataclass
class Answer:
    """One HTTP exchange; status None means no answer (error says why)."""

    method: str
    url: str
    status: int | None
    headers: dict = field(default_factory=dict)
    text: str = ""
    elapsed_ms: float = 0.0
    error: str = ""
    redirected: tuple[int, str] | None = None  # the first hop's status and the URL finally answered, if redirected

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        """A response header by name, in any case."""
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), None)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        outcome = self.error if self.status is None else f"HTTP {self.status}"
        return f"{self.method} {self.url} -> {outcome}"


IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}


class SendTimes:
    """When each request was sent (Unix times), the last `keep` of them: a long session forgets the oldest, and a
    count over a span that reaches back to them is not verified, never an undercount of relcheck's own traffic."""

    def __init__(self, keep: int = 100_000) -> None:
        self.times: deque[float] = deque(maxlen=keep)
        self.forgotten_until: float | None = None  # the newest send time no longer kept

    def append(self, at: float) -> None:
        if len(self.times) == self.times.maxlen:
            self.forgotten_until = self.times[0]
        self.times.append(at)

    def between(self, start: float, end: float) -> int:
        if self.forgotten_until is not None and start <= self.forgotten_until:
            raise NotVerified(
                f"relcheck's own requests before {self.times[0]:.0f} (Unix time) are no longer counted: more than "
                f"{self.times.maxlen} in this session"
            )
        return sum(start <= t <= end for t in self.times)


class Http:
    """HTTP to the target with a token per role; never raises for HTTP or network errors."""

    def __init__(self, base_url: str, timeout: float, tokens: dict[str, str], header: str, scheme: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.tokens = tokens
        self.header, self.scheme = header, scheme
        self.session = requests.Session()
        self.sent = SendTimes()  # relcheck's own traffic

    def sent_between(self, start: float, end: float) -> int:
        """How many requests relcheck sent to the target between two Unix times."""
        return self.sent.between(start, end)

    def auth_headers(self, role: str | None) -> dict:
        if not role or role == "anonymous":
            return {}
        if role not in self.tokens:
            raise TargetError(f"no token for role {role!r} (set target.auth.tokens.{role})")
        return {self.header: f"{self.scheme} {self.tokens[role]}".strip()}

    def request(
        self, method: str, path: str, role: str | None = None, json_body=None, headers: dict | None = None
    ) -> Answer:
        url = self.base_url + path
        started = time.perf_counter()
        self.sent.append(time.time())
        for attempt in (1, 2):
            try:
                response = self.session.request(
                    method,
                    url,
                    json=json_body,
                    timeout=self.timeout,
                    headers={**self.auth_headers(role), **(headers or {})},
                )
                break
            except requests.Timeout:
                return Answer(
                    method,
                    url,
                    None,
                    error=f"no answer within {self.timeout:g}s",
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
            except requests.RequestException as exc:
                if attempt == 1 and method in IDEMPOTENT and "Connection aborted" in str(exc):
                    continue  # a kept-alive connection the server had closed: once more on a new one
                return Answer(
                    method,
                    url,
                    None,
                    error=f"unreachable ({_reason(exc)})",
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
        if response.status_code >= 500:
            self.session.close()  # servers often drop the connection after a failure: start the next one fresh
        return Answer(
            method,
            url,
            response.status_code,
            dict(response.headers),
            response.text,
            response.elapsed.total_seconds() * 1000,
            redirected=(response.history[0].status_code, response.url) if response.history else None,
        )

    def get(self, path: str, role: str | None = None, **kwargs) -> Answer:
        return self.request("GET", path, role, **kwargs)


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
