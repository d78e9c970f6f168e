"""Fault switches: deliberate breakage for release-verification tests.

Honoured only when KUNDLI_TEST_MODE=1 (see Settings); production ignores KUNDLI_FAULTS entirely.
Each switch breaks exactly one thing, so a verification suite can prove its checks fail.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

from .settings import SettingsError

KNOWN = {
    "latency": "added latency on one route: {\"route\": \"POST /v1/kundli\", \"ms\": 50}",
    "error_rate": "fraction of /v1 requests answered 500, spread evenly: 0.2",
    "no_audit": "state changes write no audit_log rows",
    "no_security_headers": "responses carry no security headers",
    "admin_open_to_viewers": "admin routes accept the viewer role",
    "unhealthy": "/health answers 503",
    "wrong_version": "/version reports a wrong version",
    "broken_downgrade": "the newest migration's downgrade fails",
    "log_errors": "every request writes an ERROR line with a traceback to the log",
    "missing_metric": "one metric family is left out of /metrics: \"kundli_cache_hits\"",
    "capacity": "K concurrent /v1 requests, fixed service time: {\"concurrency\": 4, \"service_ms\": 50}",
    "plaintext_tokens": "API tokens are stored in plain text",
    "leak_secret": "the caller's bearer token is echoed in responses and the log",
    "broken_read": "reading a chart back answers 500",
    "cpu_burn_ms": "CPU-bound busy work per /v1 request, in milliseconds: 20",
    "memory_hog_mb": "memory held for the life of the process, in MB: 200",
    "broken_contract": "fraction of chart calculations whose result breaks the output contract, spread evenly: 0.5",
    "off_schema_version": "/version answers its version as a number, against its documented schema",
    "audit_limit_500": "GET /v1/admin/audit answers 500 for its documented maximum limit (500)",
    "open_audit": "GET /v1/admin/audit answers without a token, though it declares bearer auth",
    "uncounted_health": "not a fault, a common production choice: /health and /metrics are left out of "
                        "kundli_http_requests_total",
}


@dataclass
class Faults:
    switches: dict

    def __post_init__(self) -> None:
        unknown = sorted(set(self.switches) - set(KNOWN))
        if unknown:
            raise SettingsError(f"KUNDLI_FAULTS: unknown fault switch(es) {', '.join(unknown)}")
        self._counters = {name: itertools.count(1) for name in ("error_rate", "broken_contract")}
        self._lock = threading.Lock()

    def on(self, name: str) -> bool:
        return bool(self.switches.get(name))

    def get(self, name: str, default=None):
        return self.switches.get(name, default)

    def latency_ms(self, route: str) -> float:
        spec = self.switches.get("latency")
        if spec and spec.get("route") == route:
            return float(spec.get("ms", 0))
        return 0.0

    def should_error(self) -> bool:
        return self._spread("error_rate")

    def should_break_contract(self) -> bool:
        return self._spread("broken_contract")

    def _spread(self, name: str) -> bool:
        """True for an evenly spread fraction of calls (call n is hit when floor(n*rate) steps up)."""
        rate = float(self.switches.get(name, 0) or 0)
        if rate <= 0:
            return False
        with self._lock:
            n = next(self._counters[name])
        return int(n * rate) != int((n - 1) * rate)
