"""The HTTP API (FastAPI). Routes are documented in docs/api.md and docs/openapi.json."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import replace

import psycopg
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, disable_created_metrics
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__, astro, compat, yogas
from .auth import TokenCache, hash_password, hash_token, new_token, role_allows, verify_password
from .cache import LRUCache
from .db import Database, schema_head
from .errors import ApiError, ErrorCode, ErrorResponse
from .faults import Faults
from .metrics import Metrics
from .middleware import ServiceMiddleware
from .models import (AuditEntry, Birth, ChartOut, ChartRequest, CompatibilityOut, CompatibilityReportOut,
                     CompatibilityRequest, HealthOut, JobOut, TokenOut, TokenRequest, UserCreate, UserOut, VersionOut,
                     YogasOut)
from .settings import Settings

log = logging.getLogger("kundli.app")
SERVICE = "kundli-service"
API_VERSION = "1"
POLAR_LIMIT = 66.5
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 403, 422)}
disable_created_metrics()


class Service:
    """Everything a request handler needs, built once from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.faults = Faults(settings.faults)
        self.metrics = Metrics(omit=self.faults.get("missing_metric"))
        self.db = Database(settings.database_url, settings.db_pool_min, settings.db_pool_max,
                           audit=not self.faults.on("no_audit"))
        self.head = schema_head()
        self.charts = LRUCache(settings.cache_size)
        self.tokens = TokenCache(settings.token_cache_seconds)
        self.jobs: asyncio.Queue = asyncio.Queue()
        self.ballast = b""

    def stored_token(self, token: str) -> str:
        return token if self.faults.on("plaintext_tokens") else hash_token(token)

    def compute(self, birth: Birth, system: str) -> astro.Chart:
        """Validate the birth data against the model's range, then calculate (cached)."""
        moment = birth.datetime
        if not astro.VALID_FROM <= moment <= astro.VALID_UNTIL:
            self.metrics.validations.labels("failed").inc()
            raise ApiError(422, ErrorCode.DATE_OUT_OF_RANGE, "birth.datetime must be between 1800 and 2050")
        if abs(birth.latitude) > POLAR_LIMIT:
            self.metrics.validations.labels("failed").inc()
            raise ApiError(422, ErrorCode.POLAR_LATITUDE,
                           f"birth.latitude must be within +/-{POLAR_LIMIT} degrees for house calculation")
        self.metrics.validations.labels("ok").inc()
        key = (moment.isoformat(), birth.latitude, birth.longitude, system)
        chart = self.charts.get(key)
        if chart is not None:
            self.metrics.cache_hits.inc()
            return chart
        self.metrics.cache_misses.inc()
        chart = astro.calculate(moment, birth.latitude, birth.longitude, system)
        if self.faults.should_break_contract():
            chart = replace(chart, ascendant=chart.ascendant + 360)
        self.enforce_contract(chart)
        self.metrics.calculations.labels("ok").inc()
        self.charts.put(key, chart)
        return chart

    def enforce_contract(self, chart: astro.Chart) -> None:
        planets = [p.planet for p in chart.positions]
        in_range = all(0 <= p.longitude < 360 for p in chart.positions) and 0 <= chart.ascendant < 360
        if planets != list(astro.PLANETS) or not in_range:
            self.metrics.calculations.labels("failed").inc()
            self.metrics.contract_violations.inc()
            raise ApiError(500, ErrorCode.CONTRACT_VIOLATION, "calculated chart broke its contract")

    async def run_jobs(self) -> None:
        while True:
            chart_id, actor = await self.jobs.get()
            self.metrics.queue_length.set(self.jobs.qsize())
            try:
                await self.recalculate(chart_id, actor)
            except Exception:
                log.exception("recalculation failed chart_id=%s", chart_id)

    async def recalculate(self, chart_id: int, actor: str) -> None:
        row = await self.db.chart(chart_id)
        if row is None:
            return
        chart = astro.calculate(row["birth_at"], row["latitude"], row["longitude"], row["ayanamsa"])
        self.enforce_contract(chart)
        async with self.db.transaction() as conn:
            await self.db.update_positions(conn, chart_id, chart.ascendant, stored_positions(chart))
            await self.db.audit(conn, actor, "chart.recalculate", "chart", chart_id)


def stored_positions(chart: astro.Chart) -> list[dict]:
    return [{"planet": p.planet, "longitude": p.longitude, "retrograde": p.retrograde} for p in chart.positions]


def chart_from_row(row: dict) -> astro.Chart:
    positions = tuple(astro.Position(p["planet"], p["longitude"], p["retrograde"]) for p in row["positions"])
    return astro.Chart(row["birth_at"], row["latitude"], row["longitude"], row["ayanamsa"], row["ascendant"],
                       positions)


def chart_out(row: dict) -> dict:
    chart = chart_from_row(row)
    planets = [{
        "planet": p.planet, "longitude": p.longitude, "sign": astro.SIGNS[p.sign],
        "degree_in_sign": round(p.longitude % 30, 4), "nakshatra": astro.NAKSHATRAS[p.nakshatra],
        "house": chart.house(p.planet), "retrograde": p.retrograde,
    } for p in chart.positions]
    return {
        "id": row["id"], "name": row["name"],
        "birth": {"datetime": row["birth_at"], "latitude": row["latitude"], "longitude": row["longitude"]},
        "ayanamsa": row["ayanamsa"],
        "ascendant": {"longitude": chart.ascendant, "sign": astro.SIGNS[chart.lagna_sign]},
        "planets": planets, "created_at": row["created_at"],
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    svc = Service(settings or Settings.from_env())
    bearer = HTTPBearer(auto_error=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await svc.db.open()
        svc.ballast = b"\x01" * (int(svc.faults.get("memory_hog_mb", 0) or 0) * 2**20)
        worker = asyncio.create_task(svc.run_jobs())
        log.info("started version=%s schema_head=%s test_mode=%s", __version__, svc.head, svc.settings.test_mode)
        try:
            yield
        finally:
            worker.cancel()
            await svc.db.close()
            log.info("stopped")

    app = FastAPI(title=SERVICE, version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = svc
    app.add_middleware(ServiceMiddleware, metrics=svc.metrics, faults=svc.faults,
                       hsts_max_age=svc.settings.hsts_max_age)

    async def authenticated(request: Request,
                            credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        if credentials is None:
            if svc.faults.on("open_audit") and request.url.path == "/v1/admin/audit":
                return {"id": 0, "username": "anonymous", "role": "admin", "token_key": ""}
            raise ApiError(401, ErrorCode.UNAUTHENTICATED, "a bearer token is required")
        key = svc.stored_token(credentials.credentials)
        user = svc.tokens.get(key) or await svc.db.user_by_token_hash(key)
        if user is None:
            raise ApiError(401, ErrorCode.UNAUTHENTICATED, "the bearer token is invalid or revoked")
        svc.tokens.put(key, user)
        request.state.user = user["username"]
        return {**user, "token_key": key}

    def requires(role: str):
        if role == "admin" and svc.faults.on("admin_open_to_viewers"):
            role = "viewer"

        async def dependency(user: dict = Depends(authenticated)) -> dict:
            if not role_allows(user["role"], role):
                raise ApiError(403, ErrorCode.FORBIDDEN, f"this action requires the {role} role")
            return user
        return dependency

    async def api_version(x_api_version: str | None = Header(default=None)) -> None:
        if x_api_version not in (None, API_VERSION):
            svc.metrics.contract_violations.inc()
            raise ApiError(400, ErrorCode.UNSUPPORTED_API_VERSION, f"X-API-Version must be {API_VERSION}")

    async def load_chart(chart_id: int) -> dict:
        row = await svc.db.chart(chart_id)
        if row is None:
            raise ApiError(404, ErrorCode.CHART_NOT_FOUND, f"no chart with id {chart_id}")
        return row

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        svc.metrics.validations.labels("failed").inc()
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part != "body") or "request"
        error = ApiError(422, ErrorCode.VALIDATION_FAILED, f"{where}: {first['msg']}")
        return JSONResponse(error.body(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(exc.status_code,
                                                                                 ErrorCode.INTERNAL_ERROR)
        return JSONResponse(ApiError(exc.status_code, code, str(exc.detail)).body(), status_code=exc.status_code)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_unavailable(request: Request, exc: Exception):
        log.error("database unavailable path=%s error=%s", request.url.path, type(exc).__name__)
        error = ApiError(503, ErrorCode.SERVICE_UNAVAILABLE, "the database is unavailable, try again later")
        return JSONResponse(error.body(), status_code=503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.error("unhandled error path=%s", request.url.path, exc_info=exc)
        return JSONResponse(ApiError(500, ErrorCode.INTERNAL_ERROR, "internal error").body(), status_code=500)

    @app.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
    async def health():
        try:
            revision, database = await svc.db.schema_revision(), "ok"
        except Exception as exc:
            revision, database = None, f"unreachable ({type(exc).__name__})"
        ok = database == "ok" and revision == svc.head and not svc.faults.on("unhealthy")
        body = HealthOut(status="ok" if ok else "unavailable", database=database,
                         schema_revision=revision, schema_head=svc.head)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @app.get("/version", response_model=VersionOut)
    async def version():
        if svc.faults.on("off_schema_version"):
            return JSONResponse({"service": SERVICE, "version": 110})
        return {"service": SERVICE, "version": "0.0.0-wrong" if svc.faults.on("wrong_version") else __version__}

    @app.get("/metrics", include_in_schema=False)
    async def metrics():
        svc.metrics.db_connections.set(svc.db.connections_in_use())
        svc.metrics.queue_length.set(svc.jobs.qsize())
        return Response(svc.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(api_version)], responses=ERRORS)

    @v1.post("/auth/token", response_model=TokenOut, status_code=201)
    async def issue_token(body: TokenRequest):
        user = await svc.db.user_by_name(body.username)
        valid = user is not None and await run_in_threadpool(verify_password, body.password, user["password_hash"])
        if not valid:
            raise ApiError(401, ErrorCode.INVALID_CREDENTIALS, "unknown user or wrong password")
        token = new_token()
        async with svc.db.transaction() as conn:
            await svc.db.add_token(conn, user["id"], svc.stored_token(token))
            await svc.db.audit(conn, user["username"], "token.issue", "user", user["id"])
        return {"token": token, "role": user["role"]}

    @v1.delete("/auth/token", status_code=204)
    async def revoke_token(user: dict = Depends(authenticated)):
        async with svc.db.transaction() as conn:
            await svc.db.revoke_token(conn, user["token_key"])
            await svc.db.audit(conn, user["username"], "token.revoke", "user", user["id"])
        svc.tokens.forget(user["token_key"])
        return Response(status_code=204)

    @v1.post("/kundli", response_model=ChartOut, status_code=201)
    async def create_chart(body: ChartRequest, user: dict = Depends(requires("operator"))):
        system = body.ayanamsa or svc.settings.default_ayanamsa
        chart = svc.compute(body.birth, system)
        async with svc.db.transaction() as conn:
            row = await svc.db.insert_chart(conn, body.name, body.birth.datetime, body.birth.latitude,
                                            body.birth.longitude, system, chart.ascendant, stored_positions(chart),
                                            user["id"])
            await svc.db.audit(conn, user["username"], "chart.create", "chart", row["id"])
        return chart_out({**row, "name": body.name, "birth_at": body.birth.datetime,
                          "latitude": body.birth.latitude, "longitude": body.birth.longitude, "ayanamsa": system,
                          "ascendant": chart.ascendant, "positions": stored_positions(chart)})

    @v1.get("/kundli/{chart_id}", response_model=ChartOut, responses={404: {"model": ErrorResponse}})
    async def get_chart(chart_id: int = Path(gt=0), user: dict = Depends(requires("viewer"))):
        if svc.faults.on("broken_read"):
            raise RuntimeError("injected read failure")
        return chart_out(await load_chart(chart_id))

    @v1.delete("/kundli/{chart_id}", status_code=204, responses={404: {"model": ErrorResponse}})
    async def delete_chart(chart_id: int = Path(gt=0), user: dict = Depends(requires("admin"))):
        async with svc.db.transaction() as conn:
            if not await svc.db.delete_chart(conn, chart_id):
                raise ApiError(404, ErrorCode.CHART_NOT_FOUND, f"no chart with id {chart_id}")
            await svc.db.audit(conn, user["username"], "chart.delete", "chart", chart_id)
        return Response(status_code=204)

    @v1.get("/kundli/{chart_id}/yogas", response_model=YogasOut, responses={404: {"model": ErrorResponse}})
    async def chart_yogas(chart_id: int = Path(gt=0), user: dict = Depends(requires("viewer"))):
        found = yogas.detect(chart_from_row(await load_chart(chart_id)))
        for yoga in found:
            svc.metrics.yogas.labels(yoga.name).inc()
        return {"chart_id": chart_id, "yogas": [{"name": y.name, "planets": list(y.planets),
                                                 "description": y.description} for y in found]}

    @v1.post("/kundli/{chart_id}/recalculate", response_model=JobOut, status_code=202,
             responses={404: {"model": ErrorResponse}})
    async def recalculate(chart_id: int = Path(gt=0), user: dict = Depends(requires("operator"))):
        await load_chart(chart_id)
        svc.jobs.put_nowait((chart_id, user["username"]))
        svc.metrics.queue_length.set(svc.jobs.qsize())
        return {"job": "recalculate", "chart_id": chart_id, "queued": svc.jobs.qsize()}

    async def match(body: CompatibilityRequest) -> dict:
        a = chart_from_row(await load_chart(body.chart_a))
        b = chart_from_row(await load_chart(body.chart_b))
        result = compat.match(a, b)
        return {"chart_a": body.chart_a, "chart_b": body.chart_b, "kootas": result.kootas,
                "points": result.points, "max_points": sum(compat.MAX_POINTS.values()),
                "score": result.score, "manglik_match": result.manglik_match}

    @v1.post("/compatibility", response_model=CompatibilityOut, responses={404: {"model": ErrorResponse}})
    async def compatibility(body: CompatibilityRequest, user: dict = Depends(requires("viewer"))):
        return await match(body)

    @v1.post("/compatibility/reports", response_model=CompatibilityReportOut, status_code=201,
             responses={404: {"model": ErrorResponse}})
    async def create_report(body: CompatibilityRequest, user: dict = Depends(requires("operator"))):
        result = await match(body)
        async with svc.db.transaction() as conn:
            row = await svc.db.insert_report(conn, body.chart_a, body.chart_b, result["points"], result["score"],
                                             result["kootas"], result["manglik_match"], user["id"])
            await svc.db.audit(conn, user["username"], "report.create", "compatibility_report", row["id"])
        return {**result, **row}

    @v1.get("/compatibility/reports/{report_id}", response_model=CompatibilityReportOut,
            responses={404: {"model": ErrorResponse}})
    async def get_report(report_id: int = Path(gt=0), user: dict = Depends(requires("viewer"))):
        row = await svc.db.report(report_id)
        if row is None:
            raise ApiError(404, ErrorCode.REPORT_NOT_FOUND, f"no compatibility report with id {report_id}")
        return {**row, "max_points": sum(compat.MAX_POINTS.values())}

    @v1.get("/admin/audit", response_model=list[AuditEntry])
    async def audit_entries(limit: int = Query(50, ge=1, le=500), user: dict = Depends(requires("admin"))):
        if limit == 500 and svc.faults.on("audit_limit_500"):
            raise RuntimeError("injected failure at the largest limit")
        return await svc.db.audit_entries(limit)

    @v1.post("/admin/users", response_model=UserOut, status_code=201, responses={409: {"model": ErrorResponse}})
    async def create_user(body: UserCreate, user: dict = Depends(requires("admin"))):
        password_hash = await run_in_threadpool(hash_password, body.password) if body.password else None
        async with svc.db.transaction() as conn:
            user_id = await svc.db.create_user(conn, body.username, body.role, password_hash)
            if user_id is None:
                raise ApiError(409, ErrorCode.USERNAME_TAKEN, f"username {body.username!r} is taken")
            await svc.db.audit(conn, user["username"], "user.create", "user", user_id, {"role": body.role})
        return {"id": user_id, "username": body.username, "role": body.role}

    app.include_router(v1)
    return app
