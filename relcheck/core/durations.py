"""Durations as people write them: '90', '30s', '5m', '24h', '2d', '500ms' (the monitoring window, `relcheck
monitor`)."""

from __future__ import annotations

import re

from relcheck.core.errors import RelcheckError

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|[smhd])?", text.strip())
    if not match:
        raise RelcheckError(f"not a duration: {text!r} (e.g. 30s, 5m, 24h, 2d)")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]
