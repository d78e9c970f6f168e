"""What a service's source tree holds: where the service lives in its repository, its Python environment, test
runner, migrations (and the variable they read the database URL from), dependency inputs, code packages and docs.
Flask: the app (a factory or an instance) and Flask-Migrate's directory, for `flask --app APP db ... -d DIR`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from relcheck.probes.testsuite import coverage_definition

PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "manage.py", "alembic.ini")
APP_DIRS = ("backend", "server", "service", "api", "app", "src")
VENVS = (".venv", "venv", "env")
LOCKFILES = ("uv.lock", "poetry.lock", "Pipfile.lock", "pdm.lock", "pylock.toml")
DOCS = ("README.md", "README.rst", "CHANGELOG.md", "SECURITY.md", "CONTACTS.md", "docs")
NOT_CODE = {"tests", "test", "docs", "migrations", "alembic", "scripts", "examples", "build", "dist", *VENVS}
ENV_READ = re.compile(r"""(?:environ\s*(?:\.get\(|\[)|getenv\()\s*["']([A-Z][A-Z0-9_]*)["']""")
DB_NAME = re.compile(r"DATABASE|DB_|_DB\b|DSN|POSTGRES|SQLALCHEMY")
SETTINGS_NAME = re.compile(r"SETTINGS|CONFIG")  # a variable naming the settings file an app loads
FLASK_FACTORY = re.compile(r"^def (create_app|make_app)\(", re.M)
FLASK_INSTANCE = re.compile(r"^(\w+)\s*=\s*Flask\(", re.M)
TEST_FILES = ("test_*.py", "*_test.py")  # pytest's own default python_files


@dataclass
class TreeFound:
    source: Path
    app_dir: str = ""  # relative to source
    python: str = ""  # a virtualenv's interpreter, relative to source
    manager: str = ""  # "uv" | "poetry" | "pip"
    dependency_inputs: list[str] = field(default_factory=list)  # relative to source
    tests: str = ""  # the tests directory, relative to the app dir (Django: the apps with tests, comma-separated)
    runner: str = "pytest"  # quality.tests.runner: "django" for a manage.py project with tests in its apps
    coverage_definition: str = ""  # the project's own coverage configuration file, if any
    migrations: str = "none"  # "alembic" | "django" | "flask" | "none"
    migrations_dir: str = ""  # Flask-Migrate's directory, relative to the app dir
    flask_app: str = ""  # Flask's --app: "package.module:create_app" (a factory) or "package.module:app"
    settings_variables: list[str] = field(default_factory=list)  # variables naming a settings file the code loads
    database_variables: list[str] = field(default_factory=list)  # environment variables the code reads for its DB
    test_database_variables: list[str] = field(default_factory=list)  # ... and its tests for theirs
    packages: list[str] = field(default_factory=list)  # code packages, relative to source
    docs: list[str] = field(default_factory=list)
    openapi_file: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def app(self) -> Path:
        return self.source / self.app_dir if self.app_dir else self.source

    def in_source(self, name: str) -> str:
        return f"{self.app_dir}/{name}" if self.app_dir else name


def discover(source: Path) -> TreeFound:
    found = TreeFound(source.resolve())
    if not any((source / m).exists() for m in PROJECT_MARKERS):
        found.app_dir = next((d for d in APP_DIRS if any((source / d / m).exists() for m in PROJECT_MARKERS)), "")
    app = found.app
    interpreters = (base / v / "bin" / "python" for base in dict.fromkeys((app, source)) for v in VENVS)
    python = next((path for path in interpreters if path.exists()), None)  # the service's own venv first
    found.python = str(python.relative_to(source)) if python else ""
    found.manager = "uv" if (app / "uv.lock").exists() else "poetry" if (app / "poetry.lock").exists() else "pip"
    found.dependency_inputs = [found.in_source(n) for n in LOCKFILES if (app / n).is_file()] + [
        found.in_source(p.name) for p in sorted(app.glob("requirements*.txt")) if "dev" not in p.name
    ]
    found.tests = next((d for d in ("tests", "test") if has_tests(app / d)), "")
    flask_migrations = flask_migrations_dir(app)
    if (app / "alembic.ini").is_file() and not flask_migrations:
        found.migrations = "alembic"
    elif flask_migrations:
        found.migrations, found.migrations_dir = "flask", flask_migrations
        found.flask_app = flask_app(app, flask_migrations)
        if not found.tests:  # tests inside the package (ihatemoney/tests)
            package = Path(flask_migrations).parent
            found.tests = next(
                (str(package / d) for d in ("tests", "test") if str(package) != "." and has_tests(app / package / d)),
                "",
            )
    elif (app / "manage.py").is_file():
        found.migrations = "django"
        apps = sorted(p.parent.name for p in app.glob("*/tests.py")) + sorted(
            p.parent.parent.name for p in app.glob("*/tests/__init__.py")
        )
        if apps and not found.tests:  # Django's tests live in its apps and run with manage.py test
            found.tests, found.runner = ",".join(sorted(set(apps))), "django"
    found.coverage_definition = coverage_definition(app)
    variables = database_variables(app)
    found.database_variables = [v for v in variables if "TEST" not in v]
    found.test_database_variables = [v for v in variables if "TEST" in v]
    found.settings_variables = environment_reads(app, SETTINGS_NAME) if found.migrations == "flask" else []
    found.packages = [
        found.in_source(p.name)
        for p in sorted(app.iterdir())
        if p.is_dir() and (p / "__init__.py").is_file() and p.name not in NOT_CODE
    ]
    if not found.packages and (app / "src").is_dir():
        found.packages = [found.in_source(f"src/{p.name}") for p in sorted((app / "src").iterdir()) if p.is_dir()]
    found.docs = [n for n in DOCS if (source / n).exists()]
    found.openapi_file = next(
        (str(p.relative_to(source)) for p in sorted(source.glob("**/openapi.json")) if ".venv" not in p.parts), ""
    )
    return found


def has_tests(directory: Path) -> bool:
    return any(next(directory.rglob(pattern), None) for pattern in TEST_FILES) if directory.is_dir() else False


def flask_migrations_dir(app: Path) -> str:
    """Flask-Migrate's directory (its env.py reads the app through flask's current_app): migrations/ at the top or
    in a package; "" if there is none."""
    for env in [app / "migrations" / "env.py", *sorted(app.glob("*/migrations/env.py"))]:
        try:
            if env.is_file() and "current_app" in env.read_text(errors="replace"):
                return str(env.parent.relative_to(app))
        except OSError:
            continue
    return ""


def flask_app(app: Path, migrations: str) -> str:
    """Flask's --app for the package holding the migrations (or the top-level modules): an app factory first (it is
    what `flask` calls), else a module-level Flask instance; "" when neither is found."""
    package = Path(migrations).parent
    modules = sorted((app / package).glob("*.py")) if str(package) != "." else sorted(app.glob("*.py"))
    instance = ""
    for path in modules:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        module = ".".join([*package.parts, path.stem]) if path.stem != "__init__" else ".".join(package.parts)
        if factory := FLASK_FACTORY.search(text):
            return f"{module}:{factory.group(1)}"
        if (named := FLASK_INSTANCE.search(text)) and not instance:
            instance = f"{module}:{named.group(1)}"
    return instance


def database_variables(app: Path) -> list[str]:
    """Environment variables the code (migrations env first) reads that look like database settings."""
    return environment_reads(app, DB_NAME)


def environment_reads(app: Path, names: re.Pattern) -> list[str]:
    """Environment variables the code (migrations env first) reads whose names match."""
    files = [p for p in (app / "migrations" / "env.py", app / "alembic" / "env.py") if p.is_file()]
    files += [p for p in sorted(app.rglob("*.py"))[:400] if not set(p.parts) & {*VENVS, "node_modules"}]
    seen: list[str] = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for name in ENV_READ.findall(text):
            if names.search(name) and name not in seen:
                seen.append(name)
    return seen
