"""What a running service shows over HTTP, found with a bounded number of requests to the allow-listed host only:
its OpenAPI document (routes, auth scheme, documented security), health route, version source, Prometheus metrics
(which monitoring readings they can serve) and security headers."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from relcheck.core.errors import TargetError
from relcheck.probes import metrics
from relcheck.target.http import Answer, Http
from relcheck.target.logs import OwnRequest

OPENAPI_ROUTES = ("/openapi.json", "/swagger.json", "/api/openapi.json", "/v3/api-docs", "/__api__", "/api/docs.json")
HEALTH_ROUTES = (
    "/health",
    "/healthz",
    "/healthcheck",
    "/readyz",
    "/__heartbeat__",
    "/livez",
    "/__lbheartbeat__",
    "/status",
    "/ping",
)
VERSION_ROUTES = ("/version", "/__version__", "/api/version", "/info", "/")
VERSION_KEYS = ("version", "project_version", "app_version", "release", "build_version")
VERSION_HEADERS = ("X-Version", "X-App-Version", "X-Release", "X-Service-Version")
METRICS_ROUTES = ("/metrics", "/__metrics__", "/prometheus", "/actuator/prometheus")
INFRASTRUCTURE = (*HEALTH_ROUTES, *METRICS_ROUTES, *OPENAPI_ROUTES)
SECURITY_HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Strict-Transport-Security",
)


class ProbeBudget(TargetError):
    """The bounded number of requests or seconds is spent."""


class Prober:
    """GETs to the service, at most max_requests within seconds; the host must be allow-listed."""

    def __init__(self, base_url: str, allowed_hosts: list[str], max_requests: int = 60, seconds: float = 60) -> None:
        host = urlsplit(base_url).hostname or ""
        if host not in allowed_hosts:
            raise TargetError(
                f"refusing to probe {host or base_url!r}: not an allowed host ({', '.join(allowed_hosts)}); "
                "add it with --allow-host"
            )
        self.http = Http(base_url, 5, {}, "Authorization", "")
        self.left, self.deadline = max_requests, time.monotonic() + seconds
        self.answers: dict[str, Answer] = {}  # route -> its answer: each route is asked once
        self.server_errors: list[OwnRequest] = []  # the requests that answered 5xx: what they logged is relcheck's

    def get(self, route: str) -> Answer:
        if route in self.answers:
            return self.answers[route]
        if self.left <= 0 or time.monotonic() > self.deadline:
            raise ProbeBudget("the probe's budget of requests or time is spent")
        self.left -= 1
        sent = time.time()
        answer = self.http.get(route)
        if answer.redirected and sent_elsewhere(answer):
            # a login page or a catch-all answered, not the route: what the route said is the first hop
            answer = dataclasses.replace(answer, status=answer.redirected[0], text="")
        self.answers[route] = answer
        if answer.status is not None and answer.status >= 500:
            self.server_errors.append(OwnRequest("GET", route, answer.status, sent, time.time()))
        return answer


@dataclass
class Operation:
    method: str
    path: str
    secured: bool  # the document says it needs credentials
    has_parameters: bool
    status: int | None = None  # what an anonymous GET got, when init tried it


@dataclass
class VersionSource:
    kind: str  # "route" | "header" | "openapi"
    route: str
    value: str
    pointer: str = ""
    header: str = ""


@dataclass
class MetricsFound:
    route: str
    families: dict[str, str]  # name -> type
    request_counter: str = ""
    status_label: str = ""
    route_labels: list[str] = field(default_factory=list)
    latency_histogram: str = ""


@dataclass
class ServiceFound:
    base_url: str
    openapi_route: str = ""
    title: str = ""
    api_version: str = ""
    operations: list[Operation] = field(default_factory=list)
    auth_scheme: str = ""  # "Bearer" | "Basic" | "" (none documented)
    auth_header: str = "Authorization"
    health_route: str = ""
    versions: list[VersionSource] = field(default_factory=list)
    metrics: MetricsFound | None = None
    security_headers: dict[str, str] = field(default_factory=dict)  # on every answer init received
    partial_headers: dict[str, int] = field(default_factory=dict)  # on only some answers: header -> how many
    answers: dict[str, Answer] = field(default_factory=dict)  # route -> what it answered init
    server_errors: list[OwnRequest] = field(default_factory=list)  # init's requests that answered 5xx
    header_parameters: list[str] = field(default_factory=list)  # the header parameters the document declares
    notes: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.answers)

    def seen(self, routes) -> str:
        """What the routes init tried answered: "/health HTTP 404, /healthz HTTP 500"."""
        tried = [f"{r} {outcome(self.answers[r])}" for r in dict.fromkeys(routes) if r in self.answers]
        return ", ".join(tried) or "none tried: the probe's budget was spent"


def sent_elsewhere(answer: Answer) -> bool:
    """Redirected to another path (a login page, a catch-all), not just to the same path with(out) a slash."""
    if not answer.redirected:
        return False
    return urlsplit(answer.redirected[1]).path.rstrip("/") != urlsplit(answer.url).path.rstrip("/")


def outcome(answer: Answer) -> str:
    if answer.status is None:
        return f"no answer ({answer.error})"
    return f"HTTP {answer.status}" + (f" to {urlsplit(answer.redirected[1]).path}" if answer.redirected else "")


def discover(base_url: str, allowed_hosts: list[str], release_version: str = "") -> ServiceFound:
    prober = Prober(base_url, allowed_hosts)
    root = prober.get("/")
    if root.status is None:
        raise TargetError(f"{base_url}: {root.error}")
    found = ServiceFound(base_url.rstrip("/"), answers=prober.answers, server_errors=prober.server_errors)
    try:
        _openapi(prober, found)
        _health(prober, found)
        _versions(prober, found, release_version)
        _metrics(prober, found)
        _safe_gets(prober, found)
    except ProbeBudget as exc:
        found.notes.append(str(exc))
    _security_headers(found)
    return found


def _security_headers(found: ServiceFound) -> None:
    """The security headers on every answer init received (whatever its status): a later check asserts them on the
    service's answers, so a header on only some of them is not the service's and is not required (noted)."""
    answered = [a for a in found.answers.values() if a.status is not None]
    for name in SECURITY_HEADERS:
        on = [a for a in answered if a.header(name) is not None]
        if on and len(on) == len(answered):
            found.security_headers[name] = on[0].header(name) or ""
        elif on:
            found.partial_headers[name] = len(on)


def _json(answer: Answer):
    return answer.json if answer.ok else None


def _openapi(prober: Prober, found: ServiceFound) -> None:
    for route in OPENAPI_ROUTES:
        document = _json(prober.get(route))
        if isinstance(document, dict) and ("openapi" in document or "swagger" in document) and "paths" in document:
            found.openapi_route = route
            read_openapi(document, found)
            return
    found.notes.append(f"no OpenAPI document (what answered: {found.seen(OPENAPI_ROUTES)})")


def read_openapi(document: dict, found: ServiceFound) -> None:
    info = document.get("info") or {}
    found.title, found.api_version = str(info.get("title", "")), str(info.get("version", ""))
    schemes = (document.get("components") or {}).get("securitySchemes") or document.get("securityDefinitions") or {}
    for scheme in schemes.values():
        kind, name = scheme.get("type", ""), str(scheme.get("scheme", "")).lower()
        if kind == "basic" or (kind == "http" and name == "basic"):
            found.auth_scheme = "Basic"
        elif kind == "http" and name == "bearer" or kind in ("oauth2", "openIdConnect"):
            found.auth_scheme = "Bearer"
        elif kind == "apiKey" and scheme.get("in") == "header":
            found.auth_scheme, found.auth_header = "", scheme.get("name", "Authorization")
        if found.auth_scheme or found.auth_header != "Authorization":
            break
    default_security = bool(document.get("security"))
    for path, item in (document.get("paths") or {}).items():
        for method, operation in item.items():
            if method.lower() not in ("get", "post", "put", "patch", "delete", "head"):
                continue
            security = operation.get("security", None)
            secured = bool(security) if security is not None else default_security
            declared = [p for p in [*item.get("parameters", []), *operation.get("parameters", [])] if "in" in p]
            parameters = "{" in path or any(p.get("required") for p in declared)
            found.operations.append(Operation(method.upper(), path, secured, parameters))
            headers = [str(p.get("name", "")) for p in declared if p.get("in") == "header" and p.get("name")]
            found.header_parameters += [h for h in headers if h.lower() not in map(str.lower, found.header_parameters)]


def _safe_gets(prober: Prober, found: ServiceFound) -> None:
    """An anonymous GET of the documented operations without parameters (at most 12): what they answer, and the
    auth scheme a 401 names (WWW-Authenticate) when the document names none."""
    for op in [o for o in found.operations if o.method == "GET" and not o.has_parameters][:12]:
        answer = prober.get(op.path)
        op.status = answer.status
        challenge = answer.header("WWW-Authenticate") if answer.status == 401 else None
        if challenge and not found.auth_scheme:
            found.auth_scheme = challenge.split()[0].capitalize()


def _health(prober: Prober, found: ServiceFound) -> None:
    documented = [o.path for o in found.operations if o.method == "GET" and looks_like_health(o.path)]
    candidates = [*documented, *(r for r in HEALTH_ROUTES if r not in documented)]
    for route in candidates:
        answer = prober.get(route)
        if answer.status == 200:
            found.health_route = route
            return
    found.notes.append(f"no health route answered 200 (what answered: {found.seen(candidates)})")


def looks_like_health(path: str) -> bool:
    """Health, heartbeat and readiness routes, by name (the health candidates; not load traffic)."""
    return any(word in path.lower() for word in ("health", "heartbeat", "ready"))


def _versions(prober: Prober, found: ServiceFound, release_version: str) -> None:
    """Every version source seen in a successful answer, the likeliest first (the one naming release_version, if
    given)."""
    for route in VERSION_ROUTES:
        answer = prober.get(route)
        body = _json(answer)
        if isinstance(body, dict):
            for key in VERSION_KEYS:
                if isinstance(body.get(key), str | int | float) and not isinstance(body.get(key), bool):
                    found.versions.append(VersionSource("route", route, str(body[key]), pointer=f"/{key}"))
                    break
        for name in VERSION_HEADERS if answer.ok else ():
            if (value := answer.header(name)) is not None:
                found.versions.append(VersionSource("header", route, value, header=name))
        if answer.status == 500 and route != "/":
            found.notes.append(f"GET {route} answers 500 (a version route that is not deployed?)")
    if found.api_version:  # often the API's version, not the release's: last
        found.versions.append(VersionSource("openapi", found.openapi_route, found.api_version))
    if release_version:
        found.versions.sort(key=lambda v: v.value != release_version)


def _metrics(prober: Prober, found: ServiceFound) -> None:
    for route in METRICS_ROUTES:
        answer = prober.get(route)
        if answer.status != 200 or "text/html" in (answer.header("Content-Type") or ""):
            continue
        try:
            scrape = metrics.parse(answer.text)
        except ValueError:
            continue
        if scrape.families:
            found.metrics = read_metrics(route, answer.text, scrape)
            return
    found.notes.append(f"no Prometheus metrics (what answered: {found.seen(METRICS_ROUTES)})")


def read_metrics(route: str, text: str, scrape: metrics.Scrape) -> MetricsFound:
    """The families and their types; the request counter (by status) and latency histogram by their labels."""
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            types[name] = kind.strip()
    found = MetricsFound(route, {name: types.get(name, types.get(f"{name}_total", "")) for name in scrape.families})
    for name, samples in scrape.families.items():
        labels = set().union(*(set(lbls) for _, lbls, _ in samples)) if samples else set()
        status = next((label for label in ("status", "code", "status_code") if label in labels), "")
        kind = found.families[name]
        if not found.request_counter and kind == "counter" and "request" in name and status:
            found.request_counter, found.status_label = _counter_name(name, samples), status
            found.route_labels = [lbl for lbl in ("method", "route", "endpoint", "handler", "path") if lbl in labels]
        if not found.latency_histogram and kind == "histogram" and "request" in name and "duration" in name:
            found.latency_histogram = name
    return found


def _counter_name(family: str, samples) -> str:
    """The counter's sample name (prometheus_client strips _total from the family name)."""
    names = {sample for sample, _, _ in samples}
    return f"{family}_total" if f"{family}_total" in names else family
