"""Documentation evidence: the OpenAPI contract against the live service, document completeness, release notes,
and guides that must name what the code does (settings, error codes, migration head, deploy commands)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from relcheck.core.versions import same_version

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


# --- OpenAPI -------------------------------------------------------------------------------------------------
def operations(spec: dict) -> dict[str, dict]:
    """ "METHOD /path" -> {"parameters": {...}, "responses": [...]} for comparison."""
    ops = {}
    for path, item in (spec.get("paths") or {}).items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            params = {
                f"{p.get('in')}:{p.get('name')}": bool(p.get("required")) for p in shared + op.get("parameters", [])
            }
            if "requestBody" in op:
                params["body"] = bool(op["requestBody"].get("required"))
            ops[f"{method.upper()} {path}"] = {"parameters": params, "responses": sorted(op.get("responses", {}))}
    return ops


def diff_openapi(documented: dict, live: dict) -> list[tuple[str, str, str]]:
    """(operation, what, difference) rows; empty when the committed document matches the live service."""
    doc_ops, live_ops = operations(documented), operations(live)
    rows = []
    for op in sorted(set(live_ops) - set(doc_ops)):
        rows.append((op, "operation", "served but not documented"))
    for op in sorted(set(doc_ops) - set(live_ops)):
        rows.append((op, "operation", "documented but not served"))
    for op in sorted(set(doc_ops) & set(live_ops)):
        d, lv = doc_ops[op], live_ops[op]
        for name in sorted(set(d["parameters"]) | set(lv["parameters"])):
            if d["parameters"].get(name) != lv["parameters"].get(name):
                rows.append(
                    (
                        op,
                        f"parameter {name}",
                        f"documented {_param(d['parameters'].get(name))}, served {_param(lv['parameters'].get(name))}",
                    )
                )
        if d["responses"] != lv["responses"]:
            rows.append(
                (op, "responses", f"documented {', '.join(d['responses'])}; served {', '.join(lv['responses'])}")
            )
    return rows


def _param(required) -> str:
    return "absent" if required is None else ("required" if required else "optional")


# --- documents -----------------------------------------------------------------------------------------------
@dataclass
class DocProblem:
    document: str
    problem: str

    @property
    def identity(self) -> tuple[str, str]:
        """The same problem in another release: its document and text, not the line it is on."""
        return self.document, re.sub(r"^line \d+: ", "", self.problem)

    @property
    def label(self) -> str:
        return f"{self.document}: {self.problem}"


def placeholder_patterns(words: list[str]) -> dict[str, re.Pattern]:
    return {w: re.compile(re.escape(w) if not w[0].isalnum() else rf"\b{re.escape(w)}\b") for w in words}


def completeness(root: Path, required: list[str], placeholders: list[str]) -> tuple[list[DocProblem], list[str]]:
    """Problems in the required documents (missing, empty, placeholders, broken relative links); files checked."""
    problems, checked = [], []
    patterns = placeholder_patterns(placeholders)
    for name in required:
        path = root / name
        if not path.is_file():
            problems.append(DocProblem(name, "missing"))
            continue
        checked.append(name)
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.strip():
            problems.append(DocProblem(name, "empty"))
        for number, line in enumerate(text.splitlines(), 1):
            for word, pattern in patterns.items():
                if pattern.search(line):
                    problems.append(DocProblem(name, f"line {number}: placeholder {word}: {line.strip()[:80]}"))
        for target in _LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            linked = (path.parent / target.split("#", 1)[0]).resolve()
            if not linked.exists():
                problems.append(DocProblem(name, f"broken link: {target}"))
    return problems, checked


def words_in(text: str, pattern: str) -> set[str]:
    regex = re.compile(pattern)
    return {m.group(1) if regex.groups else m.group(0) for m in regex.finditer(text)}


def scan_tree(root: Path, paths: list[str], pattern: str, suffixes=(".py",)) -> dict[str, list[str]]:
    """name -> files where the pattern occurs, over the given files or directories."""
    found: dict[str, list[str]] = {}
    for rel in paths:
        base = root / rel
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.suffix in suffixes)
        for file in files:
            for name in words_in(file.read_text(encoding="utf-8", errors="replace"), pattern):
                found.setdefault(name, []).append(str(file.relative_to(root)))
    return found


# --- release notes -------------------------------------------------------------------------------------------
@dataclass
class ReleaseNotes:
    found: bool
    date: str = ""
    entries: list[str] = field(default_factory=list)
    heading: str = ""


HEADING = re.compile(r"^##\s*\[?(?P<version>[^\]\s(:,;]+)\]?(?P<rest>.*)$", re.M)


def release_notes(changelog: str, version: str) -> ReleaseNotes:
    """The section of a Keep-a-Changelog style file for one version (matched exactly, as a PEP 440 version): its
    heading, date and entries."""
    match = next((m for m in HEADING.finditer(changelog) if same_version(m["version"], version)), None)
    if not match:
        return ReleaseNotes(False)
    body = changelog[match.end() :]
    following = re.search(r"^##\s", body, re.M)
    body = body[: following.start()] if following else body
    date = re.search(r"\d{4}-\d{2}-\d{2}", match.group("rest"))
    entries = [line.strip()[2:] for line in body.splitlines() if line.strip().startswith(("- ", "* "))]
    return ReleaseNotes(True, date.group(0) if date else "", entries, match.group(0).strip())
