"""ASGI middleware: request metrics and log line, security headers, and the traffic fault switches."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from starlette.datastructures import MutableHeaders

from .faults import Faults
from .metrics import Metrics

log = logging.getLogger("kundli.http")
INFRASTRUCTURE = ("/health", "/metrics")
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def route_of(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", "unmatched")


class ServiceMiddleware:
    def __init__(self, app, metrics: Metrics, faults: Faults, hsts_max_age: int) -> None:
        self.app = app
        self.metrics = metrics
        self.faults = faults
        self.hsts = f"max-age={hsts_max_age}; includeSubDomains"
        capacity = faults.get("capacity")
        self.capacity = asyncio.Semaphore(int(capacity["concurrency"])) if capacity else None
        self.service_time = float(capacity["service_ms"]) / 1000 if capacity else 0.0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        method = scope["method"]
        status = 500
        self.metrics.in_flight.inc()

        async def send_with_headers(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                delay = self.faults.latency_ms(f"{method} {route_of(scope)}")
                if delay:
                    await asyncio.sleep(delay / 1000)
                headers = MutableHeaders(scope=message)
                self._security_headers(scope, headers)
                if self.faults.on("leak_secret"):
                    headers["x-debug-authorization"] = _authorization(scope)
            await send(message)

        try:
            if scope["path"] in INFRASTRUCTURE:
                await self.app(scope, receive, send_with_headers)
            else:
                await self._with_traffic_faults(scope, receive, send_with_headers)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, method, status, time.perf_counter() - started)

    async def _with_traffic_faults(self, scope, receive, send):
        burn = float(self.faults.get("cpu_burn_ms", 0) or 0)
        if burn:
            until = time.perf_counter() + burn / 1000
            while time.perf_counter() < until:
                pass
        if self.faults.should_error():
            return await _json(send, 500, {"error": {"code": "INTERNAL_ERROR", "message": "injected failure"}})
        if self.capacity is None:
            return await self.app(scope, receive, send)
        async with self.capacity:                # K permits, each held exactly service_time: a K/S req/s ceiling
            ready_at = asyncio.get_running_loop().time() + self.service_time

            async def send_after_service_time(message):
                if message["type"] == "http.response.start":
                    await asyncio.sleep(max(0.0, ready_at - asyncio.get_running_loop().time()))
                await send(message)
            await self.app(scope, receive, send_after_service_time)

    def _security_headers(self, scope, headers: MutableHeaders) -> None:
        if self.faults.on("no_security_headers"):
            return
        for name, value in SECURITY_HEADERS.items():
            headers[name] = value
        if scope.get("scheme") == "https":
            headers["strict-transport-security"] = self.hsts

    def _record(self, scope, method: str, status: int, seconds: float) -> None:
        route = route_of(scope)
        if not (scope["path"] in INFRASTRUCTURE and self.faults.on("uncounted_health")):
            self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route).observe(seconds)
        user = scope.get("state", {}).get("user", "-")
        extra = f" authorization={_authorization(scope)}" if self.faults.on("leak_secret") else ""
        log.info("request method=%s route=%s status=%d duration_ms=%.2f user=%s%s",
                 method, route, status, seconds * 1000, user, extra)
        if self.faults.on("log_errors"):
            try:
                raise RuntimeError("injected failure for log verification")
            except RuntimeError:
                log.exception("request failed method=%s route=%s", method, route)


def _authorization(scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return value.decode("latin-1")
    return ""


async def _json(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
