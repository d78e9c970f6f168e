"""Service settings, read once from the environment (documented in docs/configuration.md)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Mapping

AYANAMSAS = ("lahiri", "raman", "krishnamurti")


class SettingsError(ValueError):
    """A setting is missing or has an invalid value."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name}: must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name}: expected a boolean (1/0, true/false), got {raw!r}")


@dataclass(frozen=True)
class Settings:
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    log_file: str | None = None
    log_level: str = "INFO"
    db_pool_min: int = 2
    db_pool_max: int = 10
    cache_size: int = 1024
    token_cache_seconds: int = 30
    hsts_max_age: int = 31536000
    forwarded_allow_ips: str = "127.0.0.1"
    default_ayanamsa: str = "lahiri"
    test_mode: bool = False
    faults: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        database_url = env.get("KUNDLI_DATABASE_URL", "")
        if not database_url:
            raise SettingsError("KUNDLI_DATABASE_URL: required (a PostgreSQL connection URL)")
        log_level = env.get("KUNDLI_LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"KUNDLI_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        ayanamsa = env.get("KUNDLI_DEFAULT_AYANAMSA", "lahiri")
        if ayanamsa not in AYANAMSAS:
            raise SettingsError(f"KUNDLI_DEFAULT_AYANAMSA: expected one of {', '.join(AYANAMSAS)}, got {ayanamsa!r}")
        test_mode = _bool(env, "KUNDLI_TEST_MODE")
        faults = _faults(env.get("KUNDLI_FAULTS", "")) if test_mode else {}
        pool_min = _int(env, "KUNDLI_DB_POOL_MIN", 2, minimum=1)
        pool_max = _int(env, "KUNDLI_DB_POOL_MAX", 10, minimum=1)
        if pool_max < pool_min:
            raise SettingsError(f"KUNDLI_DB_POOL_MAX: must be >= KUNDLI_DB_POOL_MIN ({pool_min}), got {pool_max}")
        return cls(
            database_url=database_url,
            host=env.get("KUNDLI_HOST", "127.0.0.1"),
            port=_int(env, "KUNDLI_PORT", 8000, minimum=1),
            log_file=env.get("KUNDLI_LOG_FILE") or None,
            log_level=log_level,
            db_pool_min=pool_min,
            db_pool_max=pool_max,
            cache_size=_int(env, "KUNDLI_CACHE_SIZE", 1024),
            token_cache_seconds=_int(env, "KUNDLI_TOKEN_CACHE_SECONDS", 30),
            hsts_max_age=_int(env, "KUNDLI_HSTS_MAX_AGE", 31536000),
            forwarded_allow_ips=env.get("KUNDLI_FORWARDED_ALLOW_IPS", "127.0.0.1"),
            default_ayanamsa=ayanamsa,
            test_mode=test_mode,
            faults=faults,
        )


def fault_enabled(name: str, env: Mapping[str, str] | None = None) -> bool:
    """For code that runs outside the app (migrations): is this fault switch on, in test mode?"""
    env = os.environ if env is None else env
    return _bool(env, "KUNDLI_TEST_MODE") and bool(_faults(env.get("KUNDLI_FAULTS", "")).get(name))


def _faults(raw: str) -> dict:
    """Fault switches (test mode only): a JSON object, e.g. {"no_audit": true}."""
    if not raw.strip():
        return {}
    try:
        faults = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"KUNDLI_FAULTS: not valid JSON ({exc.msg})") from None
    if not isinstance(faults, dict):
        raise SettingsError("KUNDLI_FAULTS: expected a JSON object")
    return faults
