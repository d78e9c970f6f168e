"""A Django service nobody here wrote: the site `wagtail start` generates (Wagtail, PyPI), with its apps, migrations
and tests (home/tests.py), installed in its own virtualenv (.wagtail-venv, made by the README's test command). Set up
as its settings invite: a `settings/local.py` (imported by dev.py and production.py) reads the database from
POSTGRES_*; the live database is migrated with `manage.py migrate` on the session's embedded PostgreSQL."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import requests
from shop import postgres_env  # the POSTGRES_* a service reads

from relcheck.target.service import ProcessService, free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("RELCHECK_WAGTAIL_VENV") or REPO / ".wagtail-venv")
LOCAL_SETTINGS = """import os

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["POSTGRES_DB"],
        "USER": os.environ["POSTGRES_USER"],
        "PASSWORD": os.environ["POSTGRES_PASSWORD"],
        "HOST": os.environ["POSTGRES_HOST"],
        "PORT": os.environ["POSTGRES_PORT"],
    }
}
"""


def wagtail_python() -> str | None:
    path = VENV / "bin" / "python"
    return str(path) if (VENV / "bin" / "wagtail").is_file() else None


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


class WagtailSite:
    """`wagtail start blog` in workdir, its live database created and migrated, served by `manage.py runserver` on a
    loopback port: tree, dsn, admin_dsn, python, base_url."""

    def __init__(self, runtime, workdir: Path, name: str = "wagtail_site") -> None:
        python = wagtail_python()
        assert python, "no Wagtail virtualenv"
        self.python = python
        workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(VENV / "bin" / "wagtail"), "start", "blog", str(workdir)], check=True,
                       capture_output=True, timeout=60)  # fmt: skip
        self.tree = workdir
        (workdir / "blog" / "settings" / "local.py").write_text(LOCAL_SETTINGS)
        self.dsn = runtime.pg.create_database(name, runtime.recipe.user, runtime.password)
        self.admin_dsn = runtime.pg.admin_dsn(name)
        self.env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **postgres_env(self.dsn)}
        done = subprocess.run([python, "manage.py", "migrate", "--noinput"], cwd=self.tree, env=self.env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = workdir.parent / "runserver.log"
        command = [python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
        self.process = ProcessService(command, self.env, self.tree, self.log)
        self.process.start()
        assert wait_until(lambda: answers(self.base_url), timeout=60), self.log.read_text()[-2000:]

    def stop(self) -> None:
        self.process.stop()
