"""Evidence attached to a checklist item: tables, key/value facts, text and log excerpts, images.

Everything is redacted (known secrets masked) when recorded and HTML-escaped when rendered, so nothing a target
or tool returns can leak a secret or inject markup into the report.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from html import escape

from relcheck.core.secrets import redact

MAX_TEXT = 20_000
MAX_ROWS = 200


def _clean(value) -> str:
    return redact("" if value is None else str(value))


@dataclass
class Evidence:
    blocks: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    waivers: list[str] = field(default_factory=list)
    pre_existing: str = ""  # set by change(): every finding is also in the previous release (rolling back won't fix)
    introduced: bool = False  # some change() found a finding this release introduced

    def kv(self, title: str, facts: dict) -> None:
        self.blocks.append(
            {"kind": "kv", "title": _clean(title), "facts": [[_clean(k), _clean(v)] for k, v in facts.items()]}
        )

    def table(self, title: str, headers: list[str], rows: list, limit: int = MAX_ROWS, data: list | None = None):
        """data: the same rows as records a later decision reads (never re-parsed from the shown table)."""
        rows = list(rows)
        block = {
            "kind": "table",
            "title": _clean(title),
            "headers": [_clean(h) for h in headers],
            "rows": [[_clean(c) for c in row] for row in rows[:limit]],
            "omitted": max(0, len(rows) - limit),
        }
        if data is not None:
            block["data"] = json.loads(_clean(json.dumps(data)))
        self.blocks.append(block)

    def text(self, title: str, text: str, limit: int = MAX_TEXT) -> None:
        text = _clean(text)
        cut = len(text) > limit
        self.blocks.append(
            {"kind": "text", "title": _clean(title), "text": text[:limit] + ("\n… (truncated)" if cut else "")}
        )

    def log(self, title: str, lines: list[str], limit: int = 50) -> None:
        self.text(
            title, "\n".join(lines[:limit]) + (f"\n… ({len(lines) - limit} more lines)" if len(lines) > limit else "")
        )

    def image(self, title: str, png: bytes) -> None:
        self.blocks.append({"kind": "image", "title": _clean(title), "png": base64.b64encode(png).decode()})

    def change(self, title: str, previous: str, introduced: list, pre_existing: list, fixed: list) -> None:
        """The findings judged by the change against the previous release (`previous`, e.g. "3.12"): introduced by
        this release, present in both, fixed by it. When the check fails with nothing introduced, its failure is
        pre-existing: a rollback trigger it feeds leaves the decision BLOCKED, not ROLLBACK."""
        rows = (
            [("introduced", _clean(f)) for f in introduced]
            + [(f"pre-existing (also in {previous})", _clean(f)) for f in pre_existing]
            + [("fixed", _clean(f)) for f in fixed]
        )
        self.table(f"{title}: against {previous}", ["change", "finding"], rows)
        # over every comparison the check records: pre-existing only when none introduced anything
        self.introduced = self.introduced or bool(introduced)
        mark = f"present in {previous}: rolling back would not fix it" if pre_existing else ""
        self.pre_existing = "" if self.introduced else self.pre_existing or mark

    def warn(self, message: str) -> None:
        """Record a warning: a passing check becomes WARN."""
        self.warnings.append(_clean(message))

    def waived(self, message: str) -> None:
        """Record that the pass rests on waivers: a passing check becomes WAIVED."""
        self.waivers.append(_clean(message))

    def as_json(self) -> list[dict]:
        notes = [("Warnings", self.warnings), ("Waivers", self.waivers)]
        return self.blocks + [{"kind": "warnings", "title": title, "items": items} for title, items in notes if items]


def digest(blocks: list[dict]) -> str:
    canonical = json.dumps(blocks, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def render(blocks: list[dict]) -> str:
    """HTML for evidence blocks; every string escaped."""
    return "".join(_render(block) for block in blocks)


def _render(block: dict) -> str:
    title = f'<div class="ev-title">{escape(block.get("title", ""))}</div>'
    kind = block["kind"]
    if kind == "kv":
        rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in block["facts"])
        body = f'<table class="ev-kv">{rows}</table>'
    elif kind == "table":
        head = "".join(f"<th>{escape(h)}</th>" for h in block["headers"])
        rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in block["rows"])
        more = f'<div class="ev-more">… {block["omitted"]} more rows</div>' if block.get("omitted") else ""
        body = f'<table class="ev-table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}'
    elif kind == "text":
        body = f'<pre class="ev-text">{escape(block["text"])}</pre>'
    elif kind == "image":
        body = f'<img class="ev-image" alt="{escape(block["title"])}" src="data:image/png;base64,{block["png"]}"/>'
    elif kind == "warnings":
        body = '<ul class="ev-warn">' + "".join(f"<li>{escape(w)}</li>" for w in block["items"]) + "</ul>"
    else:
        body = f"<pre>{escape(json.dumps(block))}</pre>"
    return f'<div class="ev ev-{escape(kind)}">{title}{body}</div>'
