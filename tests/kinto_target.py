"""Kinto, Mozilla's JSON storage service (`kinto[postgresql]` from PyPI), as a target nobody here wrote: installed in
its own virtualenv (.kinto-venv, made by the README's test command), configured by `kinto init`, migrated by `kinto
migrate`, started by `kinto start` on a loopback port, on a database of the session's embedded PostgreSQL. Basic-auth
accounts (kinto.plugins.accounts), Prometheus metrics (kinto.plugins.prometheus at /v1/__metrics__). Deployed as its
docs say for production: with a version.json (Dockerflow) beside its ini file, without which /__version__ answers 500.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import requests

from relcheck.target.service import ProcessService, free_port

REPO = Path(__file__).resolve().parents[1]
VERSION = "26.5.0"
VENV = Path(os.environ.get("RELCHECK_KINTO_VENV") or REPO / ".kinto-venv")
PASSWORDS = {"admin": "admin-s3cret-pw", "viewer": "viewer-s3cret-pw"}


def kinto_executable() -> str | None:
    path = VENV / "bin" / "kinto"
    return str(path) if path.is_file() else None


def deployment_tree(path: Path, version_file: bool = True) -> Path:
    """What an ops team keeps for its Kinto: pinned requirements, the ini, docs, and version.json."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "requirements.txt").write_text(f"kinto[postgresql]=={VERSION}\nprometheus-client==0.26.0\n")
    (path / "README.md").write_text("# Our Kinto\n\n`kinto migrate --ini kinto.ini`, `kinto start --ini kinto.ini`.\n")
    (path / "CHANGELOG.md").write_text(f"# Changelog\n\n## [{VERSION}] - 2026-11-20\n- Kinto {VERSION}\n")
    if version_file:
        (path / "version.json").write_text(
            json.dumps({"name": "kinto", "version": VERSION, "source": "https://github.com/Kinto/kinto", "commit": ""})
        )
    return path


def configure(kinto: str, tree: Path, dsn: str) -> Path:
    """`kinto init`, then the storage on our database, accounts and Prometheus metrics, a plain-text log."""
    ini = tree / "kinto.ini"
    subprocess.run([kinto, "init", "--ini", str(ini), "--backend", "postgresql", "--cache-backend", "postgresql",
                    "--host", "127.0.0.1"], check=True, capture_output=True, timeout=60)  # fmt: skip
    text = ini.read_text().replace("postgresql://postgres:postgres@localhost/postgres", dsn)
    plugins = "kinto.plugins.accounts\n"
    text = text.replace(plugins, f"{plugins}                 kinto.plugins.prometheus\n")
    text = text.replace("keys = color, json", "keys = color, json, plain").replace(
        "formatter = color", "formatter = plain"
    )
    text += "\n[formatter_plain]\nformat = %(asctime)s %(levelname)s [%(name)s] %(message)s\n"
    text = text.replace("[logger_kinto]\nlevel = DEBUG", "[logger_kinto]\nlevel = INFO")
    ini.write_text(text)
    return ini


class Kinto:
    """One running Kinto: base_url, its database, a Basic credential per role (admin, viewer), its log (its naive
    timestamps in `zone`, e.g. "Asia/Kolkata"; default: this host's)."""

    def __init__(
        self, runtime, workdir: Path, version_file: bool = True, zone: str = "", code: Path | None = None
    ) -> None:
        """code: a directory put first on its PYTHONPATH (a patched copy of Kinto's package: a regression class)."""
        kinto = kinto_executable()
        assert kinto, "no Kinto virtualenv"
        name = f"kinto_{workdir.name[-8:]}".replace("-", "_")
        self.dsn = runtime.pg.create_database(name, runtime.recipe.user, runtime.password)
        self.admin_dsn = runtime.pg.admin_dsn(name)
        self.tree = deployment_tree(workdir / "kinto-deploy", version_file)
        self.ini = configure(kinto, self.tree, self.dsn)
        subprocess.run([kinto, "migrate", "--ini", str(self.ini)], check=True, capture_output=True, timeout=120)
        self.port = free_port()
        self.log = workdir / "kinto.log"
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **({"TZ": zone} if zone else {})}
        env.update({"PYTHONPATH": str(code)} if code else {})
        command = [kinto, "start", "--ini", str(self.ini), "--port", str(self.port)]
        self.process = ProcessService(command, env, self.tree, self.log)
        self.process.start()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.wait_until_up()
        self.tokens = {role: self.account(role, password) for role, password in PASSWORDS.items()}

    def wait_until_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base_url}/__heartbeat__", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError(f"Kinto did not come up: {self.log.read_text()[-2000:]}")

    def account(self, user: str, password: str) -> str:
        """An account (anyone may create one; `admin` is Kinto's administrator); its Basic credential."""
        answer = requests.put(
            f"{self.base_url}/accounts/{user}", json={"data": {"password": password}}, auth=(user, password), timeout=10
        )
        assert answer.status_code in (200, 201), answer.text
        return base64.b64encode(f"{user}:{password}".encode()).decode()

    def restart(self) -> None:
        """A deploy: the same release started again (its counters start at zero)."""
        self.process.stop()
        self.process.start()
        self.wait_until_up()

    def deployed(self) -> str:
        """When it was last started (post_deploy.since, as a deploy record would say)."""
        started = self.process.started()
        assert started, "not started"
        return started.isoformat()

    def stop(self) -> None:
        self.process.stop()


def patched(work: Path, edits: list[tuple[str, str, str]]) -> Path:
    """A copy of Kinto's installed package with edits (path in the package, text, its replacement; a text that is
    gone fails loudly); the directory to put first on PYTHONPATH."""
    import shutil

    package = next((VENV / "lib").glob("python*/site-packages/kinto"))
    copy = work / "patched-kinto" / "kinto"
    shutil.copytree(package, copy)
    for path, old, new in edits:
        file = copy / path
        text = file.read_text()
        assert old in text, f"{path}: the text to patch is gone: {old[:60]!r}"
        file.write_text(text.replace(old, new, 1))
    return copy.parent
