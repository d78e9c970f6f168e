"""JSON pointers (RFC 6901) into parsed JSON documents."""

from __future__ import annotations

from typing import Any


def resolve(document: Any, pointer: str) -> Any:
    """The value at pointer; KeyError, IndexError or TypeError when the document has none there."""
    node = document
    for part in [p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/") if p]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def find(document: Any, pointer: str) -> Any:
    """The value at pointer, or None when there is none."""
    try:
        return resolve(document, pointer)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
