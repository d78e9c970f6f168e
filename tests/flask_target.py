"""A Flask service with Flask-Migrate nobody here wrote: I Hate Money (ihatemoney, PyPI), a shared-budget web app with
its alembic migrations under ihatemoney/migrations (`flask db upgrade/downgrade`), its pytest tests in
ihatemoney/tests and PostgreSQL through SQLAlchemy. Installed in its own virtualenv (.flask-venv, made by the README's
test command, which also downloads three releases' source distributions into .flask-venv/sdist). Its repository is
the releases as the project published them, one commit each and tagged: 6.1.5 (schema head
927ed575acbd), then 7.0.1 (06884b17c50f: bill types, longer password hashes), the release deployed; or
7.0.1 then 7.2.1 (c941aaca38c2, "remove IP recording"), whose down-migration leaves a column its upgrade cannot cast
back on PostgreSQL. Deployed as its documentation says, with a settings file named by IHATEMONEY_SETTINGS_FILE_PATH
(here it reads the database URL and the secret key from the environment), served by gunicorn from its tree on a
loopback port; it migrates its database itself at start-up. The previous release 6.1.5 has a virtualenv of its own
(.flask-venv/previous): its code does not run on 7.0.1's dependencies."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import requests

from relcheck.target.service import ProcessService, free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("RELCHECK_FLASK_VENV") or REPO / ".flask-venv")
PREVIOUS, VERSION, NEXT = "6.1.5", "7.0.1", "7.2.1"
HEADS = {PREVIOUS: "927ed575acbd", VERSION: "06884b17c50f", NEXT: "c941aaca38c2"}
SETTINGS = """import os

SQLALCHEMY_DATABASE_URI = os.environ["IHATEMONEY_DATABASE_URI"]
SECRET_KEY = os.environ["IHATEMONEY_SECRET_KEY"]
ACTIVATE_DEMO_PROJECT = False
SESSION_COOKIE_SECURE = False
"""
SECRET_KEY = "a-secret-key-for-the-test-deployment"


def previous_python() -> str | None:
    """The previous release's own virtualenv (6.1.5 and its dependencies): its code does not run on 7.0.1's."""
    path = VENV / "previous" / "bin" / "python"
    return str(path) if (VENV / "previous" / "bin" / "gunicorn").is_file() else None


def sdist(version: str) -> Path:
    return VENV / "sdist" / f"ihatemoney-{version}.tar.gz"


def flask_python() -> str | None:
    path = VENV / "bin" / "python"
    ready = (VENV / "bin" / "gunicorn").is_file() and all(sdist(v).is_file() for v in HEADS)
    return str(path) if ready else None


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def git(tree: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=I Hate Money", "-c", "user.email=release@ihatemoney.invalid", *args]
    return subprocess.run(command, cwd=tree, check=True, capture_output=True, text=True, timeout=60).stdout


def repository(tree: Path, releases: tuple[str, ...] = (PREVIOUS, VERSION)) -> Path:
    """The releases' published sources, committed and tagged in order."""
    tree.mkdir(parents=True)
    git(tree, "init", "-q", "-b", "main")
    for version in releases:
        for child in tree.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        with tarfile.open(sdist(version)) as archive:
            archive.extractall(tree.parent / "unpacked", filter="data")
        unpacked = tree.parent / "unpacked" / f"ihatemoney-{version}"
        for child in unpacked.iterdir():
            if child.name != "PKG-INFO":  # the sdist's own, not the repository's
                shutil.move(child, tree / child.name)
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", f"Release {version}")
        git(tree, "tag", "-a", f"v{version}", "-m", f"ihatemoney {version}")
    shutil.rmtree(tree.parent / "unpacked")
    return tree


class IHateMoney:
    """The repository, the live database, the settings file and the running service: tree, dsn, admin_dsn, python,
    base_url, log, settings, env (what its processes read)."""

    def __init__(self, runtime, workdir: Path, name: str = "ihatemoney") -> None:
        python = flask_python()
        assert python, "no Flask virtualenv"
        self.python = python
        workdir.mkdir(parents=True, exist_ok=True)
        self.tree = repository(workdir / "ihatemoney")
        self.settings = workdir / "ihatemoney.cfg"
        self.settings.write_text(SETTINGS)
        self.dsn = runtime.pg.create_database(name, runtime.recipe.user, runtime.password)
        self.admin_dsn = runtime.pg.admin_dsn(name)
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "IHATEMONEY_SETTINGS_FILE_PATH": str(self.settings),
            "IHATEMONEY_DATABASE_URI": self.dsn,
            "IHATEMONEY_SECRET_KEY": SECRET_KEY,
        }
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = workdir / "flask.log"
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        # as its documentation deploys it: gunicorn, on the wsgi module, from the release's tree
        gunicorn = str(VENV / "bin" / "gunicorn")
        command = [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "1", "ihatemoney.wsgi:application"]
        self.process = ProcessService(command, self.env, self.tree, self.log)
        self.process.start()
        assert wait_until(lambda: answers(self.base_url + "/healthcheck"), timeout=60), self.log.read_text()[-2000:]

    def close(self) -> None:
        """Stop the service (the database stays with the runtime's server)."""
        self.process.stop()
