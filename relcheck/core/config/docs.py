"""[docs]: documentation checks and the API contract against the previous release."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from relcheck.core.config.base import Model, regex_with_a_group


class ApiContract(Model):
    breaking: Literal["fail", "warn"] = "fail"  # a breaking change against the previous release without a version bump
    release_notes_exempt: bool = True  # ... is accepted when this release's notes (docs.changelog) name it: a property
    #   or parameter in backticks (`nakshatra`), any other change its operation ("DELETE /v1/kundli/{chart_id}")
    version_prefix: str = r"^/v(\d+)(?:/|$)"  # regex: group 1 of a path is its API version (/v1 -> /v2 is a bump)

    @field_validator("version_prefix")
    @classmethod
    def _one_group(cls, value: str) -> str:
        return regex_with_a_group(value, "needs a group capturing the version number, e.g. ^/v(\\d+)/")


class Docs(Model):
    openapi_file: str = ""  # committed OpenAPI document (JSON or YAML), relative to target.source
    api: ApiContract = ApiContract()
    required: list[str] = ["README.md"]
    placeholders: list[str] = ["TODO", "TBD", "FIXME", "XXX", "[Contact]"]
    changelog: str = "CHANGELOG.md"
    deployment_guide: str = ""
    deploy_commands: list[str] = []  # must appear in the guide; templates over {version} {ref} {head}
    migration_head: list[str] = []  # command printing the schema head, e.g. ["{python}", "-m", "alembic", "heads"]
    config_guide: str = ""
    settings_pattern: str = ""  # regex finding a setting's name in code and guide
    settings_code_paths: list[str] = []
    troubleshooting_guide: str = ""
    error_codes_pointer: str = ""  # JSON pointer into the live OpenAPI listing the error codes
