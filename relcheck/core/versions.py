"""Versions compared as PEP 440 versions."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version


def same_version(text: str, version: str) -> bool:
    """Equal as PEP 440 versions (v1.1.0 = 1.1.0 = 1.1; 1.1 is not 1.10.0, 2.0.0 is not 2.0.0-rc.1); text that is no
    version only when it is the same string (a leading v aside)."""
    try:
        return Version(text) == Version(version)
    except InvalidVersion:
        return text.strip().removeprefix("v") == version.strip().removeprefix("v")
