"""[quality]: the target's tests, coverage, the tracker, review, and the API conformance run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from relcheck.core.config.base import Model


class TargetTests(Model):
    command: list[str]  # [PYTHON, "-m", MODULE, ...]; templates over {python}, {scratch_dsn} and
    #                                   its parts {scratch_host} {scratch_port} {scratch_db} {scratch_user} ...
    python: str = ""  # interpreter with the target's test dependencies; default: target.python
    env: dict[str, str] = {}
    prepare: list[list[str]] = []  # commands run first, same templates and env: a scratch database starts empty,
    #                                e.g. [["{python}", "-m", "alembic", "upgrade", "head"]]
    runner: Literal["pytest", "django", "unittest"] = "pytest"  # django: [PYTHON, "manage.py", "test", ...];
    #   unittest: [PYTHON, "-m", "unittest", ...]; both write JUnit through relcheck's own runner on PYTHONPATH
    junit_option: str = "--junitxml={junit}"  # pytest only
    timeout_s: float = Field(600, gt=0)
    max_skipped: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _no_scratch_name(cls, data):
        if isinstance(data, dict) and "scratch_database" in data:
            raise ValueError(
                "scratch_database: no longer configurable: relcheck names its scratch databases "
                "(relcheck_scratch_<run id>_tests); remove the key"
            )
        return data


class Coverage(Model):
    threshold_percent: float = Field(95.0, ge=0, le=100)  # total coverage must exceed this
    branch: bool = True
    source: list[str] = []  # default: the project's own coverage configuration (.coveragerc, setup.cfg, tox.ini,
    #                         pyproject.toml in its directory) decides; set, it replaces that one's [run] source
    omit: list[str] = []  # file patterns left out of the figure, as coverage.py's omit (e.g. "*/migrations/*")
    least_covered: int = Field(5, ge=0)


class GitHubApi(Model):
    api_url: str = "https://api.github.com"
    repo: str  # owner/name
    token: str = ""  # "env:GITHUB_TOKEN"
    timeout_s: float = Field(10, gt=0)


class Tracker(Model):
    kind: Literal["file", "github", "none"] = "none"
    file: str = ""  # export relative to target.source: GitHub issues JSON, or CSV
    labels: list[str] = ["critical", "blocker"]
    milestone: str = "{version}"  # matched as a version; "" = any milestone (an issue without one always counts)
    github: GitHubApi | None = None
    max_age_days: float = Field(7, ge=0)  # an older export (file) is stale: not evidence


class Review(Model):
    trailers: list[str] = ["Reviewed-by", "Approved-by"]
    github: GitHubApi | None = None  # merged pull requests count as reviewed when a review is APPROVED


class DocsFollowCode(Model):
    code_paths: list[str] = []  # paths or globs in the target's repository
    doc_paths: list[str] = []


CONFORMANCE_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
)


SCHEMATHESIS_CHECKS = CONFORMANCE_CHECKS + (
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "object_level_authorization",
)


class ApiConformance(Model):
    """Schemathesis against the served OpenAPI document (target.routes.openapi): *API documentation updated* and,
    for ignored auth, *Access controls verified*. Every method only on an instance relcheck started on a scratch
    database (the embedded target); any other service gets GET, HEAD and OPTIONS alone."""

    enabled: bool = True  # false: both items' conformance checks are not verified
    checks: list[str] = list(CONFORMANCE_CHECKS)  # Schemathesis' names (positive_data_acceptance is left out: it
    #   presumes every schema-valid request succeeds, and a business rule's 422 is no contract breach)
    phases: list[Literal["examples", "coverage", "fuzzing", "stateful"]] = ["examples", "coverage", "fuzzing"]
    max_examples: int = Field(3, ge=1)  # generated cases per operation and phase: the request budget
    time_budget_s: float = Field(60, gt=0)  # the run is stopped here; operations not tried by then are listed
    seed: int = 0  # the same seed, the same cases
    role: str = "admin"  # whose token (target.auth.tokens) the run sends; "" = none
    exclude: list[str] = ["DELETE /v1/auth/token"]  # "METHOD /path" never sent (this one revokes the run's token)
    parameters: dict[str, str] = {"header.x-api-version": "1"}  # values sent as they are, never generated
    #   ("<location>.<name>"): kundli-service documents X-API-Version as any string and refuses all but "1", so
    #   generated values would stop every case at the version check
    workers: int = Field(2, ge=1, le=16)
    rate_limit: str = ""  # Schemathesis' --rate-limit, e.g. "10/s" for a live service
    start: list[str] = []  # a command starting the service from target.source on a scratch database relcheck
    #   creates and drops, where every method is tried (the live service gets the safe ones alone); templates over
    #   {python} {host} {port} {scratch_dsn} and its parts {scratch_host} {scratch_port} {scratch_db} ...
    start_env: dict[str, str] = {}  # its environment, same templates
    start_prepare: list[list[str]] = []  # run first, same templates and env: migrate the empty scratch database
    start_provision: list[str] = []  # prints a token for {role} = quality.api.role (its last line); [] = the live one
    start_timeout_s: float = Field(60, gt=0)  # to answer 200 at target.routes.health, and for each step

    @field_validator("checks")
    @classmethod
    def _some_checks(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("names no check (set enabled = false to leave the run out)")
        unknown = [name for name in value if name not in SCHEMATHESIS_CHECKS]
        if unknown:
            known = ", ".join(SCHEMATHESIS_CHECKS)
            raise ValueError(f"not a Schemathesis check: {', '.join(unknown)} (one of {known})")
        return value


class Quality(Model):
    tests: TargetTests | None = None  # unset: the tests and coverage items are not verified
    api: ApiConformance = ApiConformance()
    coverage: Coverage = Coverage()
    tracker: Tracker = Tracker()
    review: Review = Review()
    docs_follow_code: DocsFollowCode = DocsFollowCode()
