"""A local Prometheus (and node_exporter) for the embedded target: Debian's `prometheus` and
`prometheus-node-exporter` on loopback ports, scraping every second the services it is told to watch (a file_sd
target file) and the host. The embedded target's monitoring then reads PromQL over a window, like a real one.

    server = LocalPrometheus.start(workdir)      # ToolError when the binaries are not installed
    selector = server.watch("127.0.0.1:8123", "embedded")   # 'service="embedded"', once scraped
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from relcheck.core.errors import ToolError
from relcheck.target.service import die_with_parent, free_port, stop_groups

SCRAPE_INTERVAL_S = 1  # its scrapes of the service are relcheck's own requests too

PROMETHEUS = ("prometheus",)
NODE_EXPORTER = ("prometheus-node-exporter", "node_exporter")


def which(names: tuple[str, ...]) -> str | None:
    return next(filter(None, (shutil.which(name) for name in names)), None)


def binary(names: tuple[str, ...]) -> str:
    found = which(names)
    if not found:
        raise ToolError(f"{names[0]} is not installed (Debian: apt-get install prometheus prometheus-node-exporter)")
    return found


@dataclass
class LocalPrometheus:
    url: str
    targets: Path
    processes: list[subprocess.Popen]

    @classmethod
    def start(cls, home: Path) -> LocalPrometheus:
        prometheus, node_exporter = binary(PROMETHEUS), binary(NODE_EXPORTER)
        home.mkdir(parents=True, exist_ok=True)
        port, node_port = free_port(), free_port()
        targets = home / "services.json"
        targets.write_text("[]")
        config = {  # YAML is a superset of JSON
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S:g}s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "services", "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}]},
                {"job_name": "node", "static_configs": [{"targets": [f"127.0.0.1:{node_port}"]}]},
            ],
        }
        (home / "prometheus.yml").write_text(json.dumps(config))
        commands = [
            [node_exporter, f"--web.listen-address=127.0.0.1:{node_port}"],
            [
                prometheus,
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
        ]
        processes = [
            subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
            for command in commands
        ]
        return cls(f"http://127.0.0.1:{port}", targets, processes)  # ready once watch() has its first scrape

    def watch(self, address: str, name: str, timeout: float = 30) -> str:
        """Scrape host:port as service=name; returns its selector once Prometheus has scraped it."""
        entries = json.loads(self.targets.read_text())
        entries.append({"targets": [address], "labels": {"service": name}})
        self.targets.write_text(json.dumps(entries))
        self.wait_for(f'up{{service="{name}"}} == 1', timeout)
        return f'service="{name}"'

    def first_scrape(self, selector: str, timeout: float = 30) -> float:
        """The Unix time of the selector's first scrape, once another one followed: a window starting just after it
        holds a sample of every counter from before anything that happens next."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": f"min(timestamp(up{{{selector}}}))"})
        first = float(answer.json()["data"]["result"][0]["value"][1])
        self.wait_for(f"min(timestamp(up{{{selector}}})) > {first:.3f}", timeout)
        return first

    def wait_for(self, promql: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise ToolError("prometheus or node_exporter exited at start")
            try:
                answer = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=2).json()
                if answer["data"]["result"]:
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.3)
        raise ToolError(f"Prometheus at {self.url} never answered {promql} within {timeout:g}s")

    def stop(self) -> None:
        stop_groups(self.processes)
