"""Service managers: one interface (status, start, stop) over a local process, a systemd unit, or nothing.

assert target.service.status().running
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from relcheck.core.errors import TargetError
from relcheck.target import commands, remote


@dataclass
class ServiceStatus:
    running: bool
    manager: str
    detail: str
    facts: dict = field(default_factory=dict)


def port_open(base_url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def stop_groups(processes: list[subprocess.Popen], grace: float = 5.0) -> None:
    """Stop the process groups of the still running processes (started with start_new_session): TERM, up to
    `grace` seconds each to exit, then KILL."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        running = [process for process in processes if process.poll() is None]
        for process in running:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
        for process in running:
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                pass


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM if relcheck dies, so no service outlives the suite."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class ProcessService:
    """A service run as a child process (the embedded target), in its own process group."""

    manager = "process"

    def __init__(self, command: list[str], env: dict, cwd: Path, output: Path) -> None:
        self.command, self.env, self.cwd, self.output = command, env, cwd, output
        self.process: subprocess.Popen | None = None
        self.started_at: datetime | None = None

    def start(self) -> None:
        self.started_at = datetime.now(timezone.utc)
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_groups([process], grace=timeout)

    def describe(self, action: str) -> str:
        return f"{action} the service process ({shlex.join(self.command)})"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def status(self) -> ServiceStatus:
        if self.process is None:
            return ServiceStatus(False, self.manager, "not started")
        code = self.process.poll()
        if code is not None:
            return ServiceStatus(False, self.manager, f"exited with status {code}", {"pid": self.process.pid})
        return ServiceStatus(True, self.manager, "running", {"pid": self.process.pid})

    def started(self) -> datetime | None:
        """When relcheck last started the process (None before)."""
        return self.started_at

    def last_output(self, lines: int = 5) -> str:
        try:
            text = self.output.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


class SystemdService:
    """A systemd unit, managed with systemctl (optionally through a command prefix such as ssh)."""

    manager = "systemd"

    def __init__(self, unit: str, prefix: list[str] | None = None, timeout: float = 30.0) -> None:
        if not unit:
            raise TargetError("target.service.unit: required when the manager is systemd")
        self.unit, self.prefix, self.timeout = unit, prefix or [], timeout

    def _systemctl(self, *args: str) -> commands.CommandResult:
        result = commands.run(["systemctl", *args], prefix=self.prefix, timeout=self.timeout)
        if result.returncode is None and "not found" in result.problem:
            raise TargetError("systemctl not found on this host (set target.service.command_prefix)")
        if result.returncode is None:
            raise TargetError(f"systemctl {' '.join(args)}: {result.problem}")
        return result

    def status(self) -> ServiceStatus:
        result = self._systemctl("show", self.unit, "--property=ActiveState,SubState,MainPID,LoadState")
        facts = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        running = facts.get("ActiveState") == "active" and facts.get("SubState") == "running"
        detail = (
            f"{facts.get('ActiveState', '?')} ({facts.get('SubState', '?')})"
            if facts
            else (result.stderr.strip() or "no status")
        )
        if facts.get("LoadState") == "not-found":
            detail = f"unit {self.unit} not found"
        return ServiceStatus(running, self.manager, detail, facts)

    def started(self) -> datetime | None:
        """When the unit last became active (ActiveEnterTimestamp); None if it is not active or systemd is older
        than 248 (no --timestamp=unix)."""
        result = self._systemctl("show", self.unit, "--property=ActiveEnterTimestamp", "--timestamp=unix")
        value = result.stdout.strip().removeprefix("ActiveEnterTimestamp=")
        if result.returncode != 0 or not (value.startswith("@") and value[1:].isdigit()):
            return None
        return datetime.fromtimestamp(float(value[1:]), timezone.utc)

    def describe(self, action: str) -> str:
        return remote.shown(self.prefix, ["systemctl", action, self.unit])

    def start(self) -> None:
        self._checked("start")

    def stop(self) -> None:
        self._checked("stop")

    def _checked(self, action: str) -> None:
        result = self._systemctl(action, self.unit)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            raise TargetError(f"systemctl {action} {self.unit} failed: {last}")


class UnmanagedService:
    """No service manager: the only evidence of life is the service's port accepting connections."""

    manager = "none"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def status(self) -> ServiceStatus:
        up = port_open(self.base_url)
        return ServiceStatus(
            up,
            self.manager,
            "port accepts connections" if up else "port closed",
            {"note": "no service manager configured; status from the port only"},
        )

    def started(self) -> None:
        """No service manager: no one here knows when the service started."""
        return None

    def describe(self, action: str) -> str:
        return f"cannot {action}: no service manager (target.service.manager = 'none')"

    def start(self) -> None:
        raise TargetError("cannot start or stop the service: target.service.manager is 'none'")

    stop = start


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
