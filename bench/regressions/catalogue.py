"""The regression classes: each one small patch of the reference service's release N+1 tree (v1.1.0), the phase
whose run must stop it and the checklist item(s) that must be the one(s) to stop it.

A patch is a function editing files of the tree; `edit` fails loudly when the text it replaces is gone (the
reference service changed), so a class can never silently become the clean release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Regression:
    name: str
    phase: str  # the -m expression of the run that must stop it
    expected: tuple[str, ...]  # checklist item texts, any of which stopping it is "caught"
    patch: Callable[[Path], None] | None  # None: the clean N+1
    what: str  # one line: the regression, as the release commit's subject
    explained: str = ""  # why a miss is expected (shown in the status), empty when it must be caught


def edit(tree: Path, path: str, old: str, new: str) -> None:
    file = tree / path
    text = file.read_text()
    if old not in text:
        raise RuntimeError(f"{path}: the text to patch is gone: {old[:60]!r}")
    file.write_text(text.replace(old, new, 1))


def append(tree: Path, path: str, text: str) -> None:
    file = tree / path
    file.write_text(file.read_text() + text)


# --- documentation ------------------------------------------------------------------------------------------------
def release_notes_missing(tree: Path) -> None:
    edit(tree, "CHANGELOG.md", "## [1.1.0] - 2026-11-20", "## [Unreleased]")


def config_guide_misses_setting(tree: Path) -> None:
    append(tree, "kundli/settings.py", '\n\nSLOW_QUERY_MS = int(os.environ.get("KUNDLI_SLOW_QUERY_MS", "500"))\n')


def removed_response_field(tree: Path) -> None:
    edit(
        tree,
        "kundli/models.py",
        "    birth: Birth\n    ayanamsa: Ayanamsa\n    ascendant",
        "    birth: Birth\n    ascendant",
    )


def new_required_parameter(tree: Path) -> None:
    edit(
        tree,
        "kundli/models.py",
        "    birth: Birth\n    ayanamsa: Ayanamsa | None",
        "    birth: Birth\n    timezone: str = Field(min_length=1)\n    ayanamsa: Ayanamsa | None",
    )


# --- code quality -------------------------------------------------------------------------------------------------
def failing_test(tree: Path) -> None:  # the Julian day off by half a day: the service's own tests see it
    edit(tree, "kundli/astro.py", "86400.0 + 2440587.5", "86400.0 + 2440587.0")


UNTESTED = '''

def export_{name}(rows, fmt):
    """Untested code: an export nobody wrote tests for."""
    out = []
    for row in rows:
        if fmt == "csv":
            out.append(",".join(str(v) for v in row.values()))
        elif fmt == "tsv":
            out.append("\\t".join(str(v) for v in row.values()))
        elif fmt == "lines":
            out.extend(f"{k}={v}" for k, v in row.items())
        else:
            raise ValueError(f"unknown format {fmt}")
    if not out:
        return ""
    header = ",".join(rows[0].keys()) if fmt == "csv" else ""
    body = "\\n".join(out)
    return f"{header}\\n{body}" if header else body
'''


def coverage_drop(tree: Path) -> None:
    formats = ("charts", "yogas", "reports", "users")  # four exports, none of them tested
    (tree / "kundli" / "export.py").write_text(
        '"""Exports."""\n' + "".join(UNTESTED.replace("{name}", f) for f in formats)
    )
    edit(
        tree,
        "kundli/app.py",
        "from . import __version__, astro, compat, yogas",
        "from . import __version__, astro, compat, export, yogas  # noqa: F401",
    )


# --- security -----------------------------------------------------------------------------------------------------
def bandit_high(tree: Path) -> None:
    append(
        tree,
        "kundli/manage.py",
        "\n\ndef run_hook(command: str) -> int:\n"
        "    import subprocess\n\n"
        "    return subprocess.call(command, shell=True)\n",
    )


def vulnerable_pin(tree: Path) -> None:  # back to a fastapi before PYSEC-2024-38's fix
    edit(tree, "requirements.txt", "fastapi==0.165.0", "fastapi==0.109.0")


def vulnerable_transitive(tree: Path) -> None:  # httpcore 1.0.8 holds h11 below 0.15: under GHSA-vqfr-h8mv-ghfj's fix
    append(tree, "requirements.txt", "httpcore==1.0.8\n")


def dropped_security_header(tree: Path) -> None:
    edit(tree, "kundli/middleware.py", '    "x-content-type-options": "nosniff",\n', "")


def endpoint_without_auth(tree: Path) -> None:
    edit(
        tree,
        "kundli/app.py",
        'async def get_chart(chart_id: int = Path(gt=0), user: dict = Depends(requires("viewer"))):',
        "async def get_chart(chart_id: int = Path(gt=0)):",
    )


# --- pre-deploy ---------------------------------------------------------------------------------------------------
def downgrade_fails(tree: Path) -> None:
    edit(
        tree,
        "migrations/versions/0002_compatibility_reports.py",
        'op.drop_table("compatibility_reports")\n',
        'op.drop_table("compatibility_report")\n',
    )


def downgrade_destroys_data(tree: Path) -> None:  # the charts only 1.1.0 can write are deleted on the way down
    edit(
        tree,
        "migrations/versions/0002_compatibility_reports.py",
        '    op.drop_column("charts", "ayanamsa")\n',
        "    # 1.0.0 computes every chart in Lahiri: charts in another ayanamsa would be wrong there\n"
        "    op.execute(\"DELETE FROM charts WHERE ayanamsa <> 'lahiri'\")\n"
        '    op.drop_column("charts", "ayanamsa")\n',
    )


# --- post-deploy --------------------------------------------------------------------------------------------------
def error_at_startup(tree: Path) -> None:
    edit(
        tree,
        "kundli/app.py",
        "        worker = asyncio.create_task(svc.run_jobs())\n",
        "        worker = asyncio.create_task(svc.run_jobs())\n"
        '        log.error("ephemeris cache warm-up failed: table missing, computing on demand")\n',
    )


def old_version(tree: Path) -> None:
    edit(tree, "kundli/__init__.py", '__version__ = "1.1.0"', '__version__ = "1.0.0"')


def secret_in_log(tree: Path) -> None:
    edit(
        tree,
        "kundli/middleware.py",
        'extra = f" authorization={_authorization(scope)}" if self.faults.on("leak_secret") else ""',
        'extra = f" authorization={_authorization(scope)}"',
    )


# --- performance --------------------------------------------------------------------------------------------------
SLOW_ROUTE = """
                if route_of(scope) == "/v1/kundli/{chart_id}" and method == "GET":
                    await asyncio.sleep(0.3 * (time.perf_counter() - started))
"""


def slow_route(tree: Path) -> None:  # 30 % of the server's time added on one critical route
    edit(
        tree,
        "kundli/middleware.py",
        '            if message["type"] == "http.response.start":\n',
        '            if message["type"] == "http.response.start":' + SLOW_ROUTE,
    )


def errors_on_route(tree: Path) -> None:  # every 50th read of a chart answers 500
    edit(
        tree,
        "kundli/app.py",
        '        if svc.faults.on("broken_read"):\n',
        "        svc.reads = getattr(svc, 'reads', 0) + 1\n"
        "        if svc.reads % 50 == 0:\n"
        '            raise RuntimeError("read failed")\n'
        '        if svc.faults.on("broken_read"):\n',
    )


def memory_leak(tree: Path) -> None:  # 256 KiB kept per request
    edit(
        tree,
        "kundli/middleware.py",
        "            self._record(scope, method, status, time.perf_counter() - started)\n",
        "            self._record(scope, method, status, time.perf_counter() - started)\n"
        "            RETAINED.append(bytearray(256 * 1024))\n",
    )
    edit(
        tree,
        "kundli/middleware.py",
        'INFRASTRUCTURE = ("/health", "/metrics")\n',
        'INFRASTRUCTURE = ("/health", "/metrics")\nRETAINED = []\n',
    )


# About the event loop's time per request at the clean release's capacity (one uvicorn worker: 220 req/s = 4.5 ms
# on a quiet 2-core machine, 143 req/s = 7 ms on a busy one): burning as much again on each /v1 request about halves
# the capacity. A fixed time, not the request's own elapsed time: that includes the requests interleaved with it
# and compounds under concurrency (the service collapsed to 0.4 req/s at 4 users instead of halving).
EVENT_LOOP_MS_PER_REQUEST = 6.0


def capacity_halved(tree: Path) -> None:  # each /v1 request burns the event loop's time per request again
    edit(
        tree,
        "kundli/middleware.py",
        "            self.metrics.in_flight.dec()\n",
        "            self.metrics.in_flight.dec()\n"
        '            if scope["path"].startswith("/v1"):\n'
        f"                until = time.perf_counter() + {EVENT_LOOP_MS_PER_REQUEST / 1000}\n"
        "                while time.perf_counter() < until:\n"
        "                    pass\n",
    )


CLEAN = Regression("clean N+1", "", (), None, "Release 1.1.0")
REGRESSIONS = [
    Regression(
        "release notes missing",
        "documentation",
        ("Release notes prepared",),
        release_notes_missing,
        "Changelog: 1.1.0 left under Unreleased",
    ),
    Regression(
        "config guide misses a setting",
        "documentation",
        ("Configuration guide updated",),
        config_guide_misses_setting,
        "Add KUNDLI_SLOW_QUERY_MS",
    ),
    Regression(
        "removed response field",
        "documentation",
        ("API documentation updated",),
        removed_response_field,
        "Charts no longer answer their ayanamsa",
    ),
    Regression(
        "new required request parameter",
        "documentation",
        ("API documentation updated",),
        new_required_parameter,
        "Chart requests need a timezone",
    ),
    Regression("failing test", "code_quality", ("All tests passing",), failing_test, "Julian days from midnight"),
    Regression("coverage drop", "code_quality", ("Code coverage >95%",), coverage_drop, "Add chart exports"),
    Regression("bandit HIGH finding", "security", ("Security scan completed",), bandit_high, "Add run_hook"),
    Regression("vulnerable pin", "security", ("Vulnerabilities addressed",), vulnerable_pin, "Pin fastapi 0.109.0"),
    Regression(
        "vulnerable transitive distribution",
        "security",
        ("Vulnerabilities addressed",),
        vulnerable_transitive,
        "Pin httpcore 1.0.8 for the ephemeris client",
    ),
    Regression(
        "dropped security header",
        "security",
        ("Data protection confirmed",),
        dropped_security_header,
        "Drop X-Content-Type-Options",
    ),
    Regression(
        "endpoint no longer requires auth",
        "security",
        ("Access controls verified",),
        endpoint_without_auth,
        "Charts readable without a token",
    ),
    Regression(
        "migration whose downgrade fails",
        "pre_deploy",
        ("Prepare rollback plan",),
        downgrade_fails,
        "0002 downgrade drops compatibility_report",
    ),
    Regression(
        "downgrade destroys data written by the new release",
        "pre_deploy",
        ("Prepare rollback plan",),
        downgrade_destroys_data,
        "0002 downgrade deletes charts not in Lahiri",
    ),
    Regression(
        "ERROR at start-up",
        "post_deploy",
        ("Check logs for errors",),
        error_at_startup,
        "Warm the ephemeris cache at start-up",
    ),
    Regression(
        "version endpoint answers the old version",
        "post_deploy",
        ("Verify service status",),
        old_version,
        "Version 1.0.0 left in kundli/__init__.py",
    ),
    Regression(
        "secret written to the log",
        "post_deploy",
        ("Check logs for errors", "Data protection confirmed"),
        secret_in_log,
        "Log the caller's authorization",
    ),
    Regression("route 30 % slower", "performance", ("Performance benchmarks met",), slow_route, "Slower chart reads"),
    Regression(
        "route answering 500 on 2 % of requests",
        "performance",
        ("Error rates acceptable",),
        errors_on_route,
        "Chart reads fail now and then",
    ),
    Regression(
        "memory leak under load",
        "performance",
        ("Resource utilization within limits",),
        memory_leak,
        "Keep request buffers",
    ),
    Regression(
        "capacity halved", "performance", ("Stress testing completed",), capacity_halved, "Twice the CPU per request"
    ),
]
# --quick (and tests/test_regressions.py): fast classes of three phases, each with its clean N+1; ~120 s on a quiet
# 2-core machine (the documentation and security runs measured 13-20 s each, the pre-deploy ones 22-23 s)
QUICK = [
    "release notes missing",
    "endpoint no longer requires auth",
    "vulnerable pin",
    "downgrade destroys data written by the new release",
]
