"""Resources for a deployment, measured where they matter: memory and load on the service's host (this host for the
embedded target; through target.service.command_prefix, e.g. ssh, for a remote one; never relcheck's own machine
standing in for it), the database's size and connections through SQL, free disk where backups and data go.

    facts = measure(target, backups_dir)
    facts.memory_available_mb   # None when the service host could not be measured
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from relcheck.core.config import Deploy
from relcheck.core.problems import Problem
from relcheck.target import commands, postgres


@dataclass
class Disk:
    what: str
    path: str
    free_bytes: int
    total_bytes: int

    @property
    def free_percent(self) -> float:
        return 100 * self.free_bytes / self.total_bytes


@dataclass
class HostFacts:
    host: str  # where memory and load were measured
    memory_available_mb: float | None = None
    load_per_core: float | None = None
    database_server: str = ""  # SHOW server_version
    database_bytes: int = 0
    max_connections: int = 0
    connections_used: int = 0
    disks: list[Disk] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be measured, and why

    def short_of(self, cfg: Deploy) -> list[Problem]:
        """Where the host or database falls short of the deployment's needs (deploy.*): free disk for a backup
        (disk_multiple x the database), memory, load per core, connection headroom. What was not measured is not
        short (see `problems`)."""
        need = self.needed_disk_bytes(cfg)
        mib = lambda n: f"{n / 2**20:.0f} MiB"  # noqa: E731
        found = [Problem(f"{d.what} disk:", f"{mib(d.free_bytes)} free", "<", mib(need)) for d in self.disks
                 if d.free_bytes < need]  # fmt: skip
        memory, load = self.memory_available_mb, self.load_per_core
        if memory is not None and memory < cfg.min_memory_mb:
            found.append(Problem("memory", f"{memory:.0f} MiB", "<", f"{cfg.min_memory_mb:g} MiB"))
        if load is not None and load > cfg.max_load_per_core:
            found.append(Problem("load per core", f"{load:.2f}", ">", f"{cfg.max_load_per_core:g}"))
        headroom = self.max_connections - self.connections_used
        if headroom < cfg.min_connection_headroom:
            found.append(Problem("connection headroom", str(headroom), "<", str(cfg.min_connection_headroom)))
        return found

    def needed_disk_bytes(self, cfg: Deploy) -> float:
        return self.database_bytes * cfg.disk_multiple


def measure(target, backups: Path) -> HostFacts:
    prefix = target.config.target.service.command_prefix
    if target.mode == "embedded":
        facts = HostFacts(
            "this host (the embedded target runs here)",
            psutil.virtual_memory().available / 2**20,
            os.getloadavg()[0] / (os.cpu_count() or 1),
        )
    elif prefix:
        facts = remote_host(prefix)
    else:
        facts = HostFacts(
            "not measured",
            problems=[
                "the service host's memory and load are not measured: a remote target needs "
                "target.service.command_prefix (relcheck's own machine is not the service's)"
            ],
        )
    with target.database() as conn:
        facts.database_server = conn.execute("SHOW server_version").fetchone()[0]
        facts.database_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        facts.max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
        facts.connections_used = conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()[0]
    data_dir = postgres.data_directory(target) if target.mode == "embedded" else ""  # a remote path is not ours
    for what, place in (("backups", str(backups)), ("database data", data_dir)):
        if place and os.path.isdir(place):
            usage = shutil.disk_usage(place)
            facts.disks.append(Disk(what, place, usage.free, usage.total))
    return facts


def remote_host(prefix: list[str]) -> HostFacts:
    """Memory and load of the host a command prefix reaches (Linux /proc), in one round trip."""
    words = ["sh", "-c", "hostname; nproc; cat /proc/loadavg; grep MemAvailable /proc/meminfo"]
    result = commands.run(words, prefix=prefix, timeout=30)
    if result.problem:
        return HostFacts("not measured", problems=[f"service host unreachable through {prefix[0]}: {result.problem}"])
    lines = result.stdout.split("\n")
    try:
        host, cores, load, memory = lines[0].strip(), int(lines[1]), float(lines[2].split()[0]), lines[3].split()
        return HostFacts(f"{host} (through {' '.join(prefix)})", int(memory[1]) / 1024, load / max(cores, 1))
    except (IndexError, ValueError):
        return HostFacts("not measured", problems=[result.failure("service host not measured")])
