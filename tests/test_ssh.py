"""Commands carried over ssh, against a real OpenSSH server (Debian's openssh-server) started here on a loopback
port with a throwaway host key, client key and authorized_keys: every argument arrives as it was given, and
secrets travel on stdin, never on a command line that `ps` shows."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

from conftest import installed
from relcheck.ops.deploy import Host
from relcheck.probes import hostfacts
from relcheck.target.service import free_port, port_open

SSHD = "/usr/sbin/sshd"


@pytest.fixture(scope="module")
def ssh_prefix(tmp_path_factory) -> list[str]:
    installed(SSHD if os.path.exists(SSHD) else None, "openssh-server", "RELCHECK_REQUIRE_SSHD")
    home = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / key)], check=True)
    (home / "authorized_keys").write_text((home / "client_key.pub").read_text())
    port = free_port()
    (home / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {home / 'host_key'}\nPidFile {home / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nAcceptEnv none\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)  # OpenSSH's privilege separation directory
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(home / "sshd_config")], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not port_open(f"http://127.0.0.1:{port}") and time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read() if server.stderr else "sshd exited"
        time.sleep(0.1)
    yield [
        "ssh", "-p", str(port), "-i", str(home / "client_key"), "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", f"{getpass.getuser()}@127.0.0.1",
    ]  # fmt: skip
    server.terminate()
    server.wait(10)


def watch_command_lines(seen: list[str], rounds: int = 10) -> None:
    """Every process's command line on this machine (the ssh client and the remote side), a few times."""
    for _ in range(rounds):
        seen.append("\n".join(" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])))
        time.sleep(0.1)


def test_arguments_arrive_intact_and_secrets_never_show_on_a_command_line(ssh_prefix, tmp_path):
    checkout = tmp_path / "a checkout with 'quotes' and $dollars"
    checkout.mkdir()
    secret = 's3cr\'et "pw" $HOME `id`; rm -rf /nope'
    words = ["a b", "'single'", '"double"', "$HOME", "`id`", "semi;colon", "back\\slash", "*"]
    script = (
        "import json, os, sys, time; time.sleep(1.5); "
        "json.dump({'argv': sys.argv[1:], 'password': os.environ.get('PGPASSWORD'), 'cwd': os.getcwd()}, "
        "open('seen.json', 'w'))"
    )
    host = Host(checkout, ssh_prefix, {"PGPASSWORD": secret, "PLAIN": "x y"}, timeout=60)
    seen_on_ps: list[str] = []
    watcher = threading.Thread(target=watch_command_lines, args=(seen_on_ps,))
    watcher.start()
    host.run([sys.executable, "-c", script, *words], "probe")
    watcher.join()
    seen = json.loads((checkout / "seen.json").read_text())
    assert seen == {"argv": words, "password": secret, "cwd": str(checkout)}
    assert seen_on_ps and "seen.json" in "".join(seen_on_ps)  # the watcher saw the command running
    assert not any("s3cr'et" in lines for lines in seen_on_ps)


def test_host_facts_are_measured_through_ssh(ssh_prefix):
    facts = hostfacts.remote_host(ssh_prefix)
    assert not facts.problems and facts.memory_available_mb and facts.memory_available_mb > 0
    assert facts.host.endswith(f"(through {' '.join(ssh_prefix)})")


def test_a_value_ssh_cannot_carry_is_refused_before_anything_runs(ssh_prefix, tmp_path):
    from relcheck.core.errors import TargetError

    with pytest.raises(TargetError, match="cannot pass PGPASSWORD through ssh"):
        Host(tmp_path, ssh_prefix, {"PGPASSWORD": "two\nlines"}).run(["true"], "probe")
