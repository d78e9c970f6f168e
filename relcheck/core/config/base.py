"""The config's building blocks: the strict model, its error, the loopback hosts, paths of relcheck itself."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

REPO = Path(__file__).resolve().parents[3]


IN_CHECKOUT = (REPO / "checks" / "test_post_deploy.py").is_file()  # run from relcheck's own checkout (editable)


DEFAULT_PATH = Path("relcheck.toml")  # of the working directory


def regex_with_a_group(value: str, without_one: str) -> str:
    """A validator's check: value is a regular expression with at least one group (else ValueError without_one)."""
    try:
        groups = re.compile(value).groups
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    if groups < 1:
        raise ValueError(without_one)
    return value


class ConfigError(ValueError):
    """The configuration cannot be used; the message is one line naming the file, key and problem."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LOOPBACK = ("127.0.0.1", "localhost", "::1")  # the hosts relcheck may probe and load by default


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
