"""Placeholders in configured strings: {name} (a lowercase identifier) is replaced, everything else — JSON braces
included — is left alone. Values may be strings, or dicts and lists of them."""

from __future__ import annotations

import re

from relcheck.core.errors import TargetError

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def fill(value, values: dict, where: str = ""):
    if isinstance(value, str):

        def substitute(match):
            name = match.group(1)
            if name not in values:
                valid = " ".join(f"{{{known}}}" for known in sorted(values)) or "none"
                raise TargetError(
                    f"{where + ': ' if where else ''}unknown placeholder {{{name}}} in {value!r} (valid: {valid})"
                )
            return str(values[name])

        return _PLACEHOLDER.sub(substitute, value)
    if isinstance(value, dict):
        return {k: fill(v, values, where) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values, where) for v in value]
    return value
