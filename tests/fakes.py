"""Stand-ins for outside systems that cannot run here, speaking their real protocols."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status: int, payload: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class LocalServer:
    """An HTTP server on a free loopback port, serving from a thread until closed."""

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> str:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeGitHub(LocalServer):
    """GitHub's REST API for issues, milestones and pull-request reviews: real response shapes, label and
    milestone filters, Link-header pagination (1 per page, to exercise it) and bearer-token auth."""

    PAGE = 1

    def __init__(self, repo: str = "kundli/kundli-service", token: str = "") -> None:
        self.repo, self.token = repo, token
        self.issues: list[dict] = []
        self.milestones: list[dict] = []
        self.reviews: dict[int, list[dict]] = {}
        self.requests: list[str] = []
        fake = self

        class Handler(QuietHandler):
            def do_GET(self):
                fake.requests.append(self.path)
                if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self.reply(
                        401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
                    )
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                prefix = f"/repos/{fake.repo}/"
                if not url.path.startswith(prefix):
                    return self.reply(404, {"message": "Not Found"})
                resource = url.path[len(prefix) :]
                if resource == "milestones":
                    return self.page(fake.milestones, query, url.path)
                if resource == "issues":
                    return self.page(fake.filter_issues(query), query, url.path)
                if resource.startswith("pulls/") and resource.endswith("/reviews"):
                    return self.page(fake.reviews.get(int(resource.split("/")[1]), []), query, url.path)
                return self.reply(404, {"message": "Not Found"})

            def page(self, items, query, path):
                number = int(query.get("page", 1))
                chunk = items[(number - 1) * fake.PAGE : number * fake.PAGE]
                headers = {}
                if number * fake.PAGE < len(items):
                    rest = "&".join(f"{k}={v}" for k, v in query.items() if k != "page")
                    headers["Link"] = f'<{fake.url}{path}?{rest}&page={number + 1}>; rel="next"'
                self.reply(200, chunk, headers)

            def reply(self, status, body, headers=None):
                super().reply(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)

        self.url = self.serve(Handler)

    def milestone(self, title: str) -> dict:
        found = next((m for m in self.milestones if m["title"] == title), None)
        if not found:
            found = {"number": len(self.milestones) + 1, "title": title, "state": "open"}
            self.milestones.append(found)
        return found

    def add_issue(
        self,
        number: int,
        title: str,
        labels: list[str],
        milestone: str | None,
        state: str = "open",
        pull_request: bool = False,
    ) -> None:
        issue = {
            "number": number,
            "title": title,
            "state": state,
            "html_url": f"https://github.com/{self.repo}/issues/{number}",
            "labels": [{"name": name} for name in labels],
            "milestone": self.milestone(milestone) if milestone else None,
        }
        if pull_request:
            issue["pull_request"] = {"url": f"https://api.github.com/repos/{self.repo}/pulls/{number}"}
        self.issues.append(issue)

    def filter_issues(self, query: dict) -> list[dict]:
        """GitHub semantics: state, all of the comma-separated labels, milestone by number (or "none", or "*")."""
        found = [i for i in self.issues if query.get("state", "open") in ("all", i["state"])]
        for label in filter(None, query.get("labels", "").split(",")):
            found = [i for i in found if label in {x["name"] for x in i["labels"]}]
        wanted = query.get("milestone", "*")
        if wanted == "none":
            found = [i for i in found if not i["milestone"]]
        elif wanted != "*":
            found = [i for i in found if i["milestone"] and str(i["milestone"]["number"]) == wanted]
        return found


class WebhookSink(LocalServer):
    """A Slack-compatible incoming webhook: accepts JSON with a "text" field (answering "ok"), or a set status."""

    def __init__(self, status: int = 200) -> None:
        self.status, self.messages = status, []
        sink = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                ok = sink.status == 200 and "text" in body
                if ok:
                    sink.messages.append(body["text"])
                self.reply(
                    200 if ok else (sink.status if sink.status != 200 else 400),
                    b"ok" if ok else b"invalid_payload",
                    "text/plain",
                )

        self.url = self.serve(Handler) + "/services/T000/B000/XXXX"


class MailSink:
    """A real SMTP server (aiosmtpd) keeping what it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        sink = self
        self.messages = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content.decode()))
                return "250 Message accepted for delivery"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


class HostileTarget(LocalServer):
    """A remote target whose answers carry markup and script, to prove the report keeps them inert."""

    PAYLOAD = "<script>document.title='PWNED'</script><img src=x onerror=\"document.title='PWNED'\">"

    def __init__(self) -> None:
        payload = json.dumps({"status": self.PAYLOAD, "version": self.PAYLOAD}).encode()

        class Handler(QuietHandler):
            def do_GET(self):
                self.reply(503 if self.path == "/health" else 200, payload, "application/json")

        self.url = self.serve(Handler)


SYSTEMCTL = """
import json, sys
state_file, args = sys.argv[1], sys.argv[2:]
units = json.load(open(state_file))
verb, unit = args[0], args[1]
if verb == "show":
    wanted = args[2].split("=", 1)[1].split(",")
    known = units.get(unit, {"LoadState": "not-found", "ActiveState": "inactive", "SubState": "dead", "MainPID": "0"})
    print("\\n".join(f"{name}={known[name]}" for name in wanted if name in known))
elif unit not in units:
    sys.exit(print(f"Failed to {verb} {unit}: Unit {unit} not found.", file=sys.stderr) or 5)
else:
    running = verb in ("start", "restart")
    units[unit].update(ActiveState="active" if running else "inactive", SubState="running" if running else "dead")
    json.dump(units, open(state_file, "w"))
"""

JOURNALCTL = """
import argparse, datetime, sys
parser = argparse.ArgumentParser()
parser.add_argument("-u", dest="unit", required=True)
parser.add_argument("-o", dest="output", choices=["short-iso"], required=True)
parser.add_argument("--since")
parser.add_argument("--no-pager", action="store_true")
parser.add_argument("-q", "--quiet", action="store_true")
parser.add_argument("-n", "--lines", type=int)
journal, options = sys.argv[1], parser.parse_args(sys.argv[2:])
since = options.since and datetime.datetime.fromtimestamp(int(options.since.lstrip("@")), datetime.timezone.utc)
lines = [line for line in open(journal).read().splitlines() if f" {options.unit.split('.')[0]}[" in line
         and (since is None or datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S%z") >= since)]
lines = lines[-options.lines:] if options.lines else lines
print("\\n".join(lines) if lines else ("" if options.quiet else "-- No entries --"))
"""


class SystemdHost:
    """systemctl and journalctl of a host running the service as a systemd unit (systemd cannot run here): the
    real command lines and output formats (`show` properties, `short-iso` journal lines), over a state file."""

    def __init__(self, root, units: dict[str, bool]) -> None:
        self.bin, self.state, self.journal = root / "bin", root / "units.json", root / "journal"
        self.bin.mkdir(parents=True)
        self.journal.write_text("")
        self.state.write_text(
            json.dumps(
                {
                    unit: {
                        "LoadState": "loaded",
                        "ActiveState": "active" if up else "failed",
                        "SubState": "running" if up else "failed",
                        "MainPID": "4242",
                    }
                    for unit, up in units.items()
                }
            )
        )
        for name, script, data in (("systemctl", SYSTEMCTL, self.state), ("journalctl", JOURNALCTL, self.journal)):
            (self.bin / f"{name}.py").write_text(script)
            (self.bin / name).write_text(f'#!/bin/sh\nexec {sys.executable} {self.bin / name}.py {data} "$@"\n')
            (self.bin / name).chmod(0o755)
        # target.service.command_prefix: like ssh, it takes one shell command line
        self.prefix = ["env", f"PATH={self.bin}:{os.environ['PATH']}", "sh", "-c"]

    def log(self, when, unit: str, message: str) -> None:
        with self.journal.open("a") as journal:
            journal.write(f"{when.strftime('%Y-%m-%dT%H:%M:%S%z')} app1 {unit.split('.')[0]}[4242]: {message}\n")


@contextmanager
def socket_server(handle):
    """A loopback TCP server calling handle(connection) for each connection, from a thread, until the block ends;
    yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def self_signed_certificate(directory) -> tuple[str, str]:
    """A throwaway certificate for localhost (it is its own CA): (cert.pem, key.pem)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


class TlsProxy(LocalServer):
    """A TLS-terminating reverse proxy (what nginx or a load balancer does in front of a real deployment):
    TLS 1.2+ with the given certificate, each request passed to the backend with X-Forwarded-Proto: https
    unless told to forget it."""

    HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}

    def __init__(self, backend: str, cert: str, key: str, forwarded_proto: bool = True) -> None:
        backend_parts = urlsplit(backend)

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in self.HOP_BY_HOP}
                if forwarded_proto:
                    headers["X-Forwarded-Proto"] = "https"
                upstream = http.client.HTTPConnection(backend_parts.hostname, backend_parts.port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body or None, headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                finally:
                    upstream.close()
                own = self.HOP_BY_HOP | {"content-type", "date", "server"}  # reply() and send_response() set these
                self.reply(
                    answer.status,
                    payload,
                    answer.getheader("Content-Type", ""),
                    {k: v for k, v in answer.getheaders() if k.lower() not in own},
                )

            def version_string(self):
                return "proxy"

            HOP_BY_HOP = TlsProxy.HOP_BY_HOP
            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = relay

        url = self.serve(Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = url.replace("http://127.0.0.1", "https://localhost")


def latency_histogram(route: str, counts: dict[str, int]) -> str:
    """Prometheus text of kundli_http_request_duration_seconds for one route: cumulative count per le."""
    name = "kundli_http_request_duration_seconds"
    lines = [f"# TYPE {name} histogram"]
    lines += [f'{name}_bucket{{method="GET",route="{route}",le="{le}"}} {n}' for le, n in counts.items()]
    lines.append(f'{name}_count{{method="GET",route="{route}"}} {counts["+Inf"]}')
    lines.append(f'{name}_sum{{method="GET",route="{route}"}} 0')
    return "\n".join(lines) + "\n"


class GrowingHistogram(LocalServer):
    """A metrics endpoint whose latency histogram grows by the same observations at every scrape: half under 0.5 s,
    40 % up to the top finite bucket (2.5 s), 10 % above it (30 s responses)."""

    def __init__(self) -> None:
        self.scrapes = 0
        exporter = self

        class Handler(QuietHandler):
            def do_GET(self):
                exporter.scrapes += 1
                n = 10 * exporter.scrapes
                text = latency_histogram("/v1/x", {"0.5": 5 * n, "2.5": 9 * n, "+Inf": 10 * n})
                self.reply(200, text.encode(), "text/plain; version=0.0.4")

        self.url = self.serve(Handler)
