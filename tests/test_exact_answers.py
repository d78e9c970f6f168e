"""Small pieces with exact answers: OSV version ranges, SLA thresholds, secret masking, TLS checks, log sources,
version matching, the sequential comparison's levels, capacity requirements."""

import json
import os
import ssl
import sys
from datetime import datetime, timedelta, timezone

import pytest
from fakes import SystemdHost, self_signed_certificate, socket_server

from relcheck.core import secrets
from relcheck.core.config import Service
from relcheck.core.statuses import NotVerified
from relcheck.probes import auditlog, docs, judge, protection
from relcheck.probes.audit.matching import affects
from relcheck.target import logs
from relcheck.target.http import Http


@pytest.mark.parametrize(
    "version, affected", [("0.13.4", False), ("0.13.5", True), ("0.26.1", True), ("0.27.0", False), ("1.10.0", False)]
)
def test_osv_ecosystem_ranges(version, affected):
    entry = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0.13.5"}, {"fixed": "0.27.0"}]}]}
    assert affects(entry, version).affected is affected


def test_osv_last_affected_and_explicit_versions():
    entry = {
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "2.0"}]}],
        "versions": ["3.1"],
    }
    assert affects(entry, "2.0").affected and affects(entry, "3.1").affected
    assert not affects(entry, "2.1").affected


@pytest.mark.parametrize(
    "text, limit, percentile", [("p(95) < 300ms", 300, 95), ("p(99.9) <= 1s", 1000, 99.9), ("max < 2s", 2000, None)]
)
def test_k6_style_thresholds(text, limit, percentile):
    rule = judge.threshold(text)
    assert (rule.limit_ms, rule.percentile) == (limit, percentile)
    assert rule.holds(limit - 1) and not rule.holds(float("nan"))


def test_a_bad_threshold_is_named():
    with pytest.raises(judge.ThresholdError, match="not a latency threshold: 'fast please'"):
        judge.threshold("fast please")


def test_secrets_are_masked_in_dsns_and_bearer_tokens():
    secrets.register("tok-123456")
    assert secrets.redact("postgresql://u:pw@db/x and tok-123456") == "postgresql://u:***@db/x and ***"
    assert secrets.safe_url("postgresql://u:pw@db/x") == "postgresql://u:***@db/x"


@pytest.fixture
def tls_server(tmp_path):
    """A TLS 1.2+ server with a certificate from a throwaway CA."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)

    def handshake(conn):
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass

    with socket_server(handshake) as port:
        yield f"https://localhost:{port}", cert


def test_tls_certificate_and_protocol(tls_server):
    url, ca = tls_server
    findings, _ = protection.tls_findings(url, "TLSv1.2", 5)
    assert findings and "certificate does not verify" in findings[0].problem
    findings, facts = protection.tls_findings(url, "TLSv1.2", 5, cafile=ca)
    assert not findings and facts["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert protection.tls_findings("http://localhost:1", "TLSv1.2", 5) == (
        [],
        {"TLS": "not applicable (plain http target)"},
    )


def test_audit_records_after_a_position_in_a_log_file_and_in_a_journal(tmp_path):
    pattern = r"audit actor=(?P<actor>\S+) action=(?P<action>\S+) object=(?P<object>\S+)"
    line = "audit actor=ops action=chart.create object=7"
    path = tmp_path / "service.log"
    path.write_text(f"2026-11-25T10:00:00Z INFO {line.replace('ops', 'earlier')}\n")
    log = logs.service_log(Service(), path)
    position = log.position()
    with path.open("a") as out:
        out.write(f"2026-11-25T10:00:05Z INFO {line}\n")
    assert [(r.actor, r.object) for r in auditlog.from_log(log.lines_after(position), pattern, "7", log.stamps)] == [
        ("ops", "7")
    ]

    host = SystemdHost(tmp_path / "app1", {"kundli.service": True})
    journal = logs.service_log(Service(journal_unit="kundli.service", command_prefix=host.prefix), path)
    host.log(datetime.now(timezone.utc) - timedelta(minutes=10), "kundli.service", line.replace("ops", "earlier"))
    position = journal.position()
    host.log(datetime.now(timezone.utc), "kundli.service", line)
    assert journal.describe() == "journal of kundli.service"
    assert [r.actor for r in auditlog.from_log(journal.lines_after(position), pattern, "7", log.stamps)] == ["ops"]


def test_a_big_log_is_read_from_its_last_whole_lines(tmp_path):
    path = tmp_path / "service.log"
    path.write_text(
        "2026-11-25T10:00:00Z ERROR old\n"
        + "2026-11-25T10:00:01Z INFO filler\n" * 100
        + "2026-11-25T10:00:02Z INFO new\n"
    )
    assert logs.tail(path, 64) == "2026-11-25T10:00:01Z INFO filler\n2026-11-25T10:00:02Z INFO new\n"
    assert logs.tail(path).startswith("2026-11-25T10:00:00Z ERROR old")


def test_a_missing_log_is_not_verified_never_a_clean_log(tmp_path):
    for log in (logs.service_log(Service(), None), logs.service_log(Service(), tmp_path / "nowhere.log")):
        with pytest.raises(NotVerified, match="no service log"):
            log.ready()


@pytest.fixture
def one_request_per_connection():
    """An HTTP/1.1 server that answers one request per connection (the given statuses in turn) and drops the
    connection when the next request arrives on it, without having said `Connection: close` (as uvicorn does
    after an unhandled error)."""
    statuses = []

    def answer_once(conn):
        conn.recv(65536)
        status = statuses.pop(0) if statuses else 200
        conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok".encode())
        conn.settimeout(1)
        try:
            conn.recv(65536)  # the next request on this connection: dropped unanswered
        except OSError:
            pass

    with socket_server(answer_once) as port:
        yield f"http://127.0.0.1:{port}", statuses


def test_a_connection_the_server_dropped_is_not_an_unreachable_target(one_request_per_connection):
    url, statuses = one_request_per_connection
    http = Http(url, 5, {}, "Authorization", "Bearer")
    statuses += [500, 200]
    assert [http.get("/a").status, http.request("POST", "/b").status] == [500, 200]  # after a 5xx: a new connection
    assert [http.get("/c").status, http.get("/d").status] == [200, 200]  # an idempotent request is retried once


def test_client_tools_get_the_password_in_their_environment_not_on_the_command_line(tmp_path, healthy):
    """`ps` shows command lines: pg_dump and pg_restore get PGPASSWORD instead (the dump runs in a snapshot of the
    real database, so it needs one)."""
    from urllib.parse import unquote, urlsplit

    from relcheck.probes import backup as backup_module

    seen = tmp_path / "seen.json"
    fake = tmp_path / "pg_dump"
    fake.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv, 'password': os.environ.get('PGPASSWORD')}}, open({str(seen)!r}, 'w'))\n"
    )
    fake.chmod(0o755)
    password = unquote(urlsplit(healthy.dsn).password or "")
    assert password
    backup_module.dump(healthy.dsn, tmp_path / "x.dump", str(fake))
    recorded = json.loads(seen.read_text())
    assert password not in " ".join(recorded["argv"]) and recorded["password"] == password
    assert "dbname=kundli_db" in recorded["argv"][-1] and "--snapshot=" in " ".join(recorded["argv"])


@pytest.mark.parametrize("release", [{"product": "../../etc"}, {"version": "1.1/../../x"}, {"id": ".."}])
def test_release_names_cannot_lead_outside_reports(tmp_path, release):
    from conftest import default_config_data
    from relcheck.core.config import ConfigError, load
    from relcheck.run.runner import merge, write_config

    path = write_config(merge(default_config_data(), {"release": release}), tmp_path / "relcheck.toml")
    with pytest.raises(ConfigError, match=r"release\.?.*not a safe name") as error:
        load(path)
    assert "\n" not in str(error.value) and "etc" not in str(error.value)


@pytest.mark.parametrize(
    "who, problem",
    [
        ("Meera Nair <meera.nair@kundli.example>, +91 80 5555 0103", ""),
        ("security@kundli.example", ""),
        ("Vikram Iyer, +91 80 5555 0102", ""),
        ("Ravi (Slack @ravi-oncall)", ""),
        ("SRE on-call: pagerduty:kundli-primary", ""),
        ("TBD", "is a placeholder"),
        ("[Contact]", "is a placeholder"),
        ("Asha Rao, 2026-11-25", "has no e-mail address, phone number or chat/pager handle"),
        ("Asha Rao, 25/11/2026", "has no e-mail address, phone number or chat/pager handle"),
        ("Asha Rao, 555-12", "has no e-mail address, phone number or chat/pager handle"),
        ("+91 80 5555 0101", "names no one"),
    ],
)
def test_an_emergency_contact_is_a_name_with_a_channel(who, problem):
    from relcheck.probes.contacts import Contact

    found = Contact("Technical Team", "Lead Developer", who).problem
    assert found.endswith(problem) if problem else found == "", found


def test_samples_too_noisy_to_exclude_the_allowed_slowdown_are_inconclusive_never_a_pass():
    import random

    rng = random.Random(7)
    tight = [rng.gauss(10, 0.3) for _ in range(400)]
    noisy = [rng.lognormvariate(2.3, 0.9) for _ in range(60)]
    same = judge.compare("r", tight, [rng.gauss(10, 0.3) for _ in range(400)], 0.98, 1.10, 1.30)
    assert same.verdict == "pass" and same.ratio_high < 1.10
    slower = judge.compare("r", tight, [x * 1.5 for x in tight], 0.98, 1.10, 1.30)
    assert slower.verdict == "fail"
    unclear = judge.compare("r", noisy, [x * 1.2 for x in noisy[::-1]], 0.98, 1.10, 1.30)
    assert unclear.verdict == "inconclusive" and unclear.ratio_low < 1.10 < unclear.ratio_high
    assert judge.overall([same, unclear], []) == "inconclusive" and judge.overall([same, slower, unclear], []) == "fail"
    assert judge.overall([same, unclear], ["r-critical"]) == "warn"  # only critical routes can block the item


def test_pips_refusal_is_a_conflict_a_missing_pin_or_an_unreachable_index():
    from relcheck.probes.dependencies import failed, unreadable_indexes

    conflict = failed(
        "ERROR: Cannot install fastapi==0.165.0 and starlette==0.20.0\n\nThe conflict is caused by:\n"
        "    The user requested starlette==0.20.0\n    fastapi 0.165.0 depends on starlette>=1.6.0\n\nTo fix this",
        1,
        {},
    )
    assert conflict.ok is False and conflict.detail == (
        "the pins conflict: The user requested starlette==0.20.0; fastapi 0.165.0 depends on starlette>=1.6.0"
    )
    missing = "ERROR: Could not find a version that satisfies the requirement x==1.0 (from versions: none)"
    assert failed(missing, 1, {}).ok is False and "x==1.0" in failed(missing, 1, {}).detail
    # with PIP_RETRIES=0 pip says nothing of the connection on its console: its --log says which index failed
    log = (
        "2026-12-03T18:45:01,123 Could not fetch URL https://ci:t0ken@pypi.internal:8443/simple/x/: connection error: "
        "HTTPConnectionPool(host='pypi.internal', port=8443): Max retries exceeded with url: /simple/x/ (Caused by "
        "NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new "
        "connection: [Errno 111] Connection refused')) - skipping\n"
        "2026-12-03T18:45:01,200 Could not fetch URL https://mirror.internal/simple/x/: timed out - skipping\n"
        "2026-12-03T18:45:01,300 Could not fetch URL https://pypi.org/simple/x/: 404 Client Error: Not Found for url:"
        " https://pypi.org/simple/x/ - skipping\n"
    )
    unread = unreadable_indexes(log)
    assert unread == {
        "https://pypi.internal:8443/simple": "Connection refused",
        "https://mirror.internal/simple": "timed out",
    }
    offline = failed(missing, 1, unread)
    assert offline.ok is None and offline.detail == (
        "the package index is unreachable: the pins could not be resolved (https://pypi.internal:8443/simple: "
        "Connection refused; https://mirror.internal/simple: timed out)"
    )


def test_a_pin_missing_from_a_reachable_index_fails_one_on_an_unreachable_index_is_not_verified(tmp_path, monkeypatch):
    """pip's own resolver against a local PEP 503 index that has tinydist 1.0 only, then against a closed port."""
    from fakes import LocalServer, QuietHandler

    from relcheck.probes.dependencies import resolve
    from relcheck.target.service import free_port

    class Index(QuietHandler):
        def do_GET(self):
            if self.path.rstrip("/") == "/simple/tinydist":
                page = b'<a href="/files/tinydist-1.0-py3-none-any.whl">tinydist-1.0-py3-none-any.whl</a>'
                self.reply(200, page, "text/html")
            else:
                self.reply(404, b"not found", "text/plain")

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tinydist==2.0\n")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # this machine's own index settings left out
    monkeypatch.setenv("PIP_RETRIES", "0")  # pip prints no connection error then
    index = LocalServer()
    monkeypatch.setenv("PIP_INDEX_URL", f"{index.serve(Index)}/simple")
    try:
        missing = resolve([requirements], [], sys.executable, timeout=120)
    finally:
        index.close()
    assert missing.ok is False, missing.detail
    assert "tinydist==2.0 (from versions: 1.0)" in missing.detail
    closed = f"http://127.0.0.1:{free_port()}/simple"
    monkeypatch.setenv("PIP_INDEX_URL", closed)
    unreachable = resolve([requirements], [], sys.executable, timeout=120)
    assert unreachable.ok is None, unreachable.detail
    assert f"({closed}: Connection refused)" in unreachable.detail


def test_a_config_error_names_the_variable_never_the_value_it_came_from(tmp_path, monkeypatch):
    from conftest import default_config_data
    from relcheck.core.config import ConfigError, load
    from relcheck.run.runner import merge, write_config

    monkeypatch.setenv("KUNDLI_TIMEOUT", "s3")  # too short to register as a secret, and still never shown
    monkeypatch.setenv("KUNDLI_PROBES", "hunter2/../../x")
    changes = {"target": {"request_timeout_s": "env:KUNDLI_TIMEOUT"}}
    with pytest.raises(ConfigError) as error:
        load(write_config(merge(default_config_data(), changes), tmp_path / "a.toml"))
    assert "$KUNDLI_TIMEOUT" in str(error.value) and "s3" not in str(error.value).replace("$KUNDLI_TIMEOUT", "")
    with pytest.raises(ConfigError) as error:
        load(
            write_config(
                merge(default_config_data(), {"release": {"version": "env:KUNDLI_PROBES"}}), tmp_path / "b.toml"
            )
        )
    assert "hunter2" not in str(error.value)


def test_generated_load_takes_the_answered_gets_but_not_health_metrics_or_api_documents():
    from relcheck.discovery.scenarios import safe_routes
    from relcheck.discovery.service import Operation, ServiceFound

    found = ServiceFound("http://127.0.0.1:1", health_route="/__heartbeat__", openapi_route="/__api__")
    found.operations = [
        Operation("GET", path, False, False, status)
        for path, status in [("/deliveries", 200), ("/__heartbeat__", 200), ("/__api__", 200), ("/metrics", 200),
                             ("/livez", 200), ("/readyz", 200), ("/accounts", 401), ("/", 200)]
    ]  # fmt: skip
    assert safe_routes(found) == ["/deliveries", "/"]


def test_init_finds_a_service_in_a_monorepo_directory_and_its_own_virtualenv_first(tmp_path):
    from relcheck.discovery import tree

    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "alembic.ini").write_text("")
    for venv in (tmp_path / ".venv", tmp_path / "backend" / "venv"):
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").write_text("")
    found = tree.discover(tmp_path)
    assert (found.app_dir, found.python, found.migrations) == ("backend", "backend/venv/bin/python", "alembic")


def test_a_document_is_read_from_the_source_none_when_missing_and_not_verified_when_unconfigured(tmp_path):
    (tmp_path / "GUIDE.md").write_text("deploy 1.2.0", encoding="utf-8")
    assert docs.document(tmp_path, "GUIDE.md", "deployment_guide") == "deploy 1.2.0"
    assert docs.document(tmp_path, "MISSING.md", "deployment_guide") is None
    with pytest.raises(NotVerified, match="docs.deployment_guide is not configured"):
        docs.document(tmp_path, "", "deployment_guide")


def test_release_notes_match_the_exact_pep_440_version():
    changelog = (
        "# Changelog\n\n## [2.0.0-rc.1] - 2026-11-01\n- Preview\n\n## [1.10.0] - 2026-10-01\n- Ten\n\n"
        "## v1.2.0 (2026-09-01)\n- Two\n\n## [1.1.0] - 2026-08-01\n- One\n"
    )
    assert docs.release_notes(changelog, "1.1").heading == "## [1.1.0] - 2026-08-01"  # 1.1 == 1.1.0, not 1.10.0
    assert docs.release_notes(changelog, "1.10").heading == "## [1.10.0] - 2026-10-01"
    assert docs.release_notes(changelog, "1.2.0").entries == ["Two"]  # a leading v is the same version
    assert not docs.release_notes(changelog, "2.0.0").found  # a release candidate is not the release
    assert docs.release_notes(changelog, "2.0.0rc1").date == "2026-11-01"
    assert not docs.release_notes("## [1.10.0] - 2026-10-01\n- Ten\n", "1.1").found


def test_the_capacity_requirement_is_stated_or_the_previous_releases_never_zero():
    from relcheck.probes.loadtest import required_capacity

    assert required_capacity(200, 0.8, "1.0.0", 112) == (200, "performance.stress.required_rps")
    required, source = required_capacity(None, 0.8, "1.0.0", 112.0)
    assert required == pytest.approx(89.6) and source.startswith("0.8 x 1.0.0's measured 112.0 req/s")
    for previous in (None, 0.0):
        with pytest.raises(NotVerified, match=r"^no capacity requirement: set performance\.stress\.required_rps"):
            required_capacity(None, 0.8, "1.0.0", previous)


def test_a_sequential_comparison_is_strict_early_and_at_the_confidence_last():
    levels = [judge.look_confidence(0.98, look, 4) for look in range(1, 5)]
    assert levels == sorted(levels, reverse=True) and levels[-1] == pytest.approx(0.98)
    assert levels[0] > 0.9999 and judge.look_confidence(0.98, 1, 1) == pytest.approx(0.98)


def test_a_variable_is_refused_when_it_points_at_the_live_database_not_when_a_role_shares_its_name():
    from relcheck.target.environment import refuse_live
    from relcheck.target.scratch import DsnParts, ScratchRefused

    live = DsnParts.of("postgresql://hc:secret@db.internal:5432/hc")
    refuse_live({"DB_USER": "hc", "DB_PASSWORD": "hc", "DB_NAME": "relcheck_scratch_1"}, [], live, "quality.tests")
    for variable, value in (("DB_NAME", "hc"), ("DATABASE_URL", "postgresql://x@elsewhere/hc")):
        with pytest.raises(ScratchRefused, match=f"^quality.tests.env.{variable} names the live database hc"):
            refuse_live({variable: value}, [], live, "quality.tests")


def test_relchecks_own_send_times_are_bounded_and_a_span_reaching_forgotten_ones_is_not_verified():
    from relcheck.target.http import SendTimes

    sent = SendTimes(keep=3)
    for at in (10.0, 20.0, 30.0, 40.0):  # 10 is forgotten
        sent.append(at)
    assert sent.between(11, 40) == 3 and sent.between(25, 35) == 1
    with pytest.raises(NotVerified, match="no longer counted: more than 3 in this session"):
        sent.between(5, 40)


def test_error_shares_latencies_and_host_needs_are_problems_with_their_measure_and_limit():
    from relcheck.core.config import Deploy
    from relcheck.core.problems import joined
    from relcheck.probes.hostfacts import Disk, HostFacts
    from relcheck.probes.monitor import ErrorShares, Latencies, RouteLatency

    shares = ErrorShares({"GET /a": (3, 100), "GET /b": (0, 900), "GET /c": (1, 5)}, 0.01, 0.02, 20)
    assert [str(p) for p in shares.problems] == ["GET /a 3.0% 5xx > route budget 2%"]  # the total holds: 4 of 1005
    assert shares.too_few == ["GET /c 1 of 5"]  # shown, not judged
    worse = ErrorShares({"GET /a": (30, 100)}, 0.01, 0.5, 20)
    assert joined(worse.problems) == "5xx answers: 30.00% of 100 requests > budget 1.0%"
    latency = Latencies(
        {"GET /a": RouteLatency(250.0, 50), "GET /b": RouteLatency(90.0, 50), "GET /c": RouteLatency(5000, 3)},
        100.0,
        {"GET /b": 80.0},
        20,
    )
    assert [str(p) for p in latency.slow] == ["GET /a 250.0 ms > 100 ms", "GET /b 90.0 ms > 80 ms"]
    assert [row[3] for row in latency.rows] == ["100", "80", "too few to judge"] and not latency.unverified
    above = Latencies({"GET /a": RouteLatency(100.0, 50, above=True)}, 200.0, {}, 20)
    assert not above.slow and above.unverified.startswith("p95 above the top histogram bucket")
    cfg = Deploy(min_memory_mb=256, max_load_per_core=1.5, min_connection_headroom=10, disk_multiple=2)
    disks = [Disk("backups", "/b", 3 * 2**30, 10 * 2**30), Disk("data", "/d", 2**30, 10 * 2**30)]
    facts = HostFacts("here", 180.0, 0.5, database_bytes=2**30, max_connections=100, connections_used=95, disks=disks)
    assert joined(facts.short_of(cfg)) == (
        "data disk: 1024 MiB free < 2048 MiB; memory 180 MiB < 256 MiB; connection headroom 5 < 10"
    )
    assert not HostFacts("here", None, None, database_bytes=1, max_connections=100).short_of(cfg)  # not measured
