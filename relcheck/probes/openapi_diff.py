"""OpenAPI documents compared by contract: operations, parameters, request bodies and responses down to each schema
property's type, required flag and enum, with local `$ref`s resolved (OpenAPI 3 `#/components/...`, Swagger 2
`#/definitions/...`), allOf merged, anyOf/oneOf as unions and recursive schemas cut at the repeated reference.

One engine finds the differences between two documents; the committed-vs-served comparison reports every one, the
previous-vs-this-release comparison classifies each as breaking or additive, by oasdiff's rules: an operation, a
success status or a response property removed (required or not: clients read what they were given), a request that
accepts less (a new required parameter, body or property, a narrowed type, an enum value removed or an enum set,
security that a client of the old document may not meet), a
response that may answer what clients never saw (a widened type, a property that became optional) or drops an enum
value, a media type removed. Values added to a response enum are additive (oasdiff warns, from 1.30 errs)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from relcheck.core import pointers

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
MAX_NODES = 50_000  # per schema: more is a document this comparison cannot judge, never a pass


class SchemaError(ValueError):
    """The document cannot be compared (not OpenAPI, a $ref that does not resolve, too large); one line."""


@dataclass(frozen=True)
class Node:
    """One schema position: its types (empty: any), enum (None: any value), required in its parent."""

    types: frozenset[str] = frozenset()
    enum: frozenset[str] | None = None
    required: bool = False


Shape = dict[str, Node]  # property path ("" the schema itself, "planets[].name", "kootas{}") -> node
Security = frozenset[frozenset[str]]  # alternatives, each the schemes it needs together; frozenset() = anonymous


@dataclass(frozen=True)
class Part:
    """A parameter, the request body or one response: which side of the exchange, media types, schema."""

    side: str  # "request" | "response"
    media: frozenset[str]
    shape: Shape


@dataclass(frozen=True)
class Difference:
    operation: str  # "GET /v1/kundli/{chart_id}"
    location: str  # "" (the operation itself), "parameter query:limit", "request body", "response 200"
    kind: str  # "removed" | "added" | "type" | "required" | "enum" | "media"
    path: str = ""  # property path in the location's schema ("" the schema itself)
    old: Any = None
    new: Any = None
    side: str = ""

    @property
    def breaking(self) -> bool:
        """Whether a client written against the old document can break on the new one."""
        request = self.side == "request"
        if self.kind == "removed":
            if not self.location:  # an operation
                return True
            if not self.path:  # a location: a response status (success only) or a parameter/body (never breaking)
                return not request and self.location.startswith("response 2")
            return not request  # a response property clients read; a request property the server now ignores
        if self.kind == "added":
            return request and bool(self.new and self.new.required)  # a new required parameter/body/property
        if self.kind == "required":
            return self.new if request else self.old  # became required in a request / optional in a response
        if self.kind == "type":
            old, new = self.old, self.new
            return not _covers(new, old) if request else not _covers(old, new)
        if self.kind == "enum":  # a request accepts fewer values; a response drops values clients act on
            if request:
                return self.new is not None and (self.old is None or bool(self.old - self.new))
            return self.old is not None and self.new is not None and bool(self.old - self.new)
        if self.kind == "media":
            return bool(self.old - self.new)
        if self.kind == "security":  # a client holding what an old alternative needs may find no new one it meets
            return any(not any(new <= old for new in self.new) for old in self.old)
        return True  # an unknown kind is never waved through

    @property
    def where(self) -> str:
        return f"{self.operation} {self.location or 'operation'}"

    @property
    def subject(self) -> str:
        return f"property {self.path}" if self.path else "schema"


def _covers(wide: frozenset[str], narrow: frozenset[str]) -> bool:
    """Whether values of the `narrow` types are all of the `wide` ones (empty: any type; a number holds integers)."""
    if not wide:
        return True
    return bool(narrow) and all(t in wide or (t == "integer" and "number" in wide) for t in narrow)


# --- loading -------------------------------------------------------------------------------------------------
def parse(text: str, name: str) -> dict:
    """An OpenAPI/Swagger document from JSON or YAML text; SchemaError naming `name` when it is none."""
    try:
        document = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SchemaError(f"{name} does not parse: {str(exc).splitlines()[0]}") from None
    check(document, name)
    return document


def check(document: Any, name: str) -> None:
    if not isinstance(document, dict) or not ("openapi" in document or "swagger" in document):
        raise SchemaError(f"{name} is not an OpenAPI document (no openapi or swagger version)")
    if not isinstance(document.get("paths"), dict):
        raise SchemaError(f"{name} has no paths object")


# --- a document as parts -------------------------------------------------------------------------------------
class Contract:
    """Operation -> location -> Part of one document."""

    def __init__(self, document: dict, name: str) -> None:
        check(document, name)
        self.doc, self.name = document, name
        self.swagger2 = "swagger" in document
        self.operations: dict[str, dict[str, Part]] = {}
        self.security: dict[str, Security] = {}
        for path, item in document["paths"].items():
            item = self.deref(item)
            for method in METHODS:
                if isinstance(item.get(method), dict):
                    name = f"{method.upper()} {path}"
                    self.operations[name] = self._operation(item, item[method])
                    self.security[name] = _security(item[method].get("security", document.get("security")))

    def deref(self, node: Any, seen: tuple[str, ...] = ()) -> Any:
        """Follow a chain of $refs to the object it names; SchemaError on a loop of refs or one that misses."""
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                raise SchemaError(f"{self.name}: $ref {ref} refers to itself")
            seen += (ref,)
            if not ref.startswith("#/"):
                raise SchemaError(f"{self.name}: $ref {ref} is not local (only #/... references are resolved)")
            found = pointers.find(self.doc, ref[1:])
            if found is None:
                raise SchemaError(f"{self.name}: $ref {ref} does not resolve")
            node = found
        return node

    def _operation(self, item: dict, op: dict) -> dict[str, Part]:
        parts: dict[str, Part] = {}
        params = {}
        for raw in item.get("parameters", []) + op.get("parameters", []):  # the operation's override the path's
            p = self.deref(raw)
            params[(p.get("in"), p.get("name"))] = p
        for (where, name), p in params.items():
            if where == "body":  # Swagger 2
                media = op.get("consumes") or self.doc.get("consumes") or ["application/json"]
                parts["request body"] = self._part("request", media, p.get("schema"), bool(p.get("required")))
                continue
            schema = p.get("schema", p) if not self.swagger2 else {k: v for k, v in p.items() if k != "required"}
            if "content" in p:
                schema = _first_schema(p["content"])
            parts[f"parameter {where}:{name}"] = self._part("request", [], schema, bool(p.get("required")))
        if "requestBody" in op:
            body = self.deref(op["requestBody"])
            content = body.get("content") or {}
            parts["request body"] = self._part(
                "request", list(content), _first_schema(content), bool(body.get("required"))
            )
        for status, raw in (op.get("responses") or {}).items():
            answer = self.deref(raw)
            if self.swagger2:
                media = (op.get("produces") or self.doc.get("produces") or ["application/json"]) * ("schema" in answer)
                schema = answer.get("schema")
            else:
                content = answer.get("content") or {}
                media, schema = list(content), _first_schema(content)
            parts[f"response {status}"] = self._part("response", media, schema, True)
        return parts

    def _part(self, side: str, media: list[str], schema: Any, required: bool) -> Part:
        shape: Shape = {}
        if schema is not None:
            self._walk(schema, "", required, (), shape)
        else:
            shape[""] = Node(required=required)
        return Part(side, frozenset(media), shape)

    def _walk(self, schema: Any, path: str, required: bool, refs: tuple[str, ...], out: Shape) -> None:
        """Record the node at path and everything below it; a $ref already being expanded is recorded as itself."""
        if len(out) > MAX_NODES:
            raise SchemaError(f"{self.name}: a schema with more than {MAX_NODES} properties (too large to compare)")
        if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            if ref in refs:  # recursive: the same reference at the same place is the same schema
                out[path] = Node(frozenset({f"recursive {ref.rsplit('/', 1)[-1]}"}), None, required)
                return
            self._walk(self.deref({"$ref": ref}), path, required, refs + (ref,), out)
            return
        if not isinstance(schema, dict):  # true/false schemas (3.1), or a malformed one: any value
            out[path] = Node(required=required)
            return
        if "allOf" in schema:
            schema = self._all_of(schema, refs)
        branches = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(branches, list) and branches:
            self._union(schema, branches, path, required, refs, out)
            return
        out[path] = Node(_types(schema), _enum(schema), required)
        needed = set(schema.get("required") or []) if isinstance(schema.get("required"), list) else set()
        for name, sub in (schema.get("properties") or {}).items():
            self._walk(sub, _join(path, name), name in needed, refs, out)
        if "items" in schema:
            self._walk(schema["items"], f"{path}[]", False, refs, out)
        if isinstance(schema.get("additionalProperties"), dict):
            self._walk(schema["additionalProperties"], f"{path}{{}}", False, refs, out)

    def _all_of(self, schema: dict, refs: tuple[str, ...]) -> dict:
        """allOf merged into one schema: properties and required united, types and enums intersected (a member
        that refers back to a schema being expanded is left out)."""
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for member in schema["allOf"]:
            if isinstance(member, dict) and member.get("$ref") in refs:
                continue
            member = self.deref(member)
            if not isinstance(member, dict):
                continue
            if "allOf" in member:
                member = self._all_of(member, refs)
            for name, sub in (member.get("properties") or {}).items():
                props = merged.setdefault("properties", {})
                props[name] = {"allOf": [props[name], sub]} if name in props else sub
            merged["required"] = list(merged.get("required") or []) + list(member.get("required") or [])
            for key in ("type", "enum", "items", "additionalProperties", "anyOf", "oneOf", "nullable"):
                if key in member and key not in merged:
                    merged[key] = member[key]
            if "enum" in member and "enum" in merged:
                merged["enum"] = [v for v in merged["enum"] if v in member["enum"]]
        return merged

    def _union(self, schema: dict, branches: list, path: str, required: bool, refs, out: Shape) -> None:
        """anyOf/oneOf: types and enums united; a property is required when every object branch requires it."""
        shapes = []
        for branch in branches:
            shape: Shape = {}
            self._walk(branch, path, required, refs, shape)
            shapes.append(shape)
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
        if _types(rest) or rest.get("properties"):
            shape = {}
            self._walk(rest, path, required, refs, shape)
            shapes.append(shape)
        for key in {k for shape in shapes for k in shape}:
            nodes = [shape[key] for shape in shapes if key in shape]
            types = frozenset() if any(not n.types for n in nodes) else frozenset().union(*(n.types for n in nodes))
            valued = [n for n in nodes if n.types != {"null"}]
            enum = None
            if valued and all(n.enum is not None for n in valued):
                enum = frozenset().union(*(n.enum for n in valued if n.enum is not None))
            if key == path:
                out[key] = Node(types, enum, required)
            else:
                out[key] = Node(types, enum, len(nodes) == len(shapes) and all(n.required for n in nodes))


def _security(requirements: Any) -> Security:
    if not isinstance(requirements, list) or not requirements:  # none declared, or [] (explicitly anonymous)
        return frozenset({frozenset()})
    return frozenset(frozenset(r) if isinstance(r, dict) else frozenset() for r in requirements)


def _security_text(security: Security) -> str:
    return " or ".join(sorted(" and ".join(sorted(a)) or "none" for a in security))


def _first_schema(content: dict) -> Any:
    """The schema of the JSON media type (else the first one)."""
    if not isinstance(content, dict) or not content:
        return None
    media = next((m for m in content if "json" in m), next(iter(content)))
    return (content[media] or {}).get("schema")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _types(schema: dict) -> frozenset[str]:
    declared = schema.get("type")
    types = set(declared if isinstance(declared, list) else [declared] if isinstance(declared, str) else [])
    if not types and "properties" in schema:
        types.add("object")
    if not types and "items" in schema:
        types.add("array")
    if types and (schema.get("nullable") or schema.get("x-nullable")):  # OpenAPI 3.0, Swagger 2 extension
        types.add("null")
    return frozenset(types)


def _enum(schema: dict) -> frozenset[str] | None:
    if "const" in schema:
        return frozenset({json.dumps(schema["const"], sort_keys=True)})
    if isinstance(schema.get("enum"), list):
        return frozenset(json.dumps(v, sort_keys=True) for v in schema["enum"])
    return None


# --- differences ---------------------------------------------------------------------------------------------
def differences(old: Contract, new: Contract) -> list[Difference]:
    """Every difference from `old` to `new`, operations first, then locations, then properties (each in a stable
    order); none below a property that one of them lacks."""
    found: list[Difference] = []
    for op in sorted(set(old.operations) | set(new.operations)):
        if op not in new.operations:
            found.append(Difference(op, "", "removed"))
        elif op not in old.operations:
            found.append(Difference(op, "", "added"))
        else:
            if old.security[op] != new.security[op]:
                found.append(Difference(op, "security", "security", "", old.security[op], new.security[op], "request"))
            found += _operation_differences(op, old.operations[op], new.operations[op])
    return sorted(found, key=lambda d: (bool(d.location), bool(d.path)))


def _operation_differences(op: str, old: dict[str, Part], new: dict[str, Part]) -> list[Difference]:
    found = []
    for location in sorted(set(old) | set(new)):
        a, b = old.get(location), new.get(location)
        if b is None and a is not None:
            found.append(Difference(op, location, "removed", "", a.shape[""], None, a.side))
        elif a is None and b is not None:
            found.append(Difference(op, location, "added", "", None, b.shape[""], b.side))
        elif a is not None and b is not None:
            if a.media != b.media:
                found.append(Difference(op, location, "media", "", a.media, b.media, a.side))
            found += _shape_differences(op, location, a.side, a.shape, b.shape)
    return found


def _shape_differences(op: str, location: str, side: str, old: Shape, new: Shape) -> list[Difference]:
    found: list[Difference] = []
    gone: list[str] = []  # paths one side lacks: nothing below them is reported again
    for path in sorted(set(old) | set(new), key=lambda p: (p.count(".") + p.count("["), p)):
        if any(path.startswith(g) and path[len(g) : len(g) + 1] in (".", "[", "{") for g in gone):
            continue
        a, b = old.get(path), new.get(path)
        if a is None or b is None:
            gone.append(path)
            kind = "removed" if b is None else "added"
            found.append(Difference(op, location, kind, path, a, b, side))
            continue
        if a.types != b.types:
            found.append(Difference(op, location, "type", path, a.types, b.types, side))
        if a.required != b.required:
            found.append(Difference(op, location, "required", path, a.required, b.required, side))
        if a.enum != b.enum:
            found.append(Difference(op, location, "enum", path, a.enum, b.enum, side))
    return found


# --- wording -------------------------------------------------------------------------------------------------
def _types_text(types: frozenset[str]) -> str:
    return " or ".join(sorted(types)) or "any type"


def _enum_text(values: frozenset[str] | None) -> str:
    return "any value" if values is None else ", ".join(sorted(values)) or "no value"


def _required_text(required: bool) -> str:
    return "required" if required else "optional"


def drift_text(d: Difference, old_name: str = "committed", new_name: str = "served") -> str:
    """How a committed-vs-served difference reads: "property planets missing from the served document"."""
    if d.kind in ("removed", "added"):
        missing_from = new_name if d.kind == "removed" else old_name
        if d.path:
            return f"property {d.path} missing from the {missing_from} document"
        return "documented but not served" if d.kind == "removed" else "served but not documented"
    if d.kind == "type":
        return f"{d.subject} type: {old_name} {_types_text(d.old)}, {new_name} {_types_text(d.new)}"
    if d.kind == "required":
        return (
            f"{d.subject} {_required_text(d.old)} in the {old_name} document, {_required_text(d.new)} when {new_name}"
        )
    if d.kind == "enum":
        if d.old is None or d.new is None:
            return f"{d.subject} enum: {old_name} {_enum_text(d.old)}; {new_name} {_enum_text(d.new)}"
        missing = [(d.old - d.new, new_name), (d.new - d.old, old_name)]
        return f"{d.subject} enum: " + "; ".join(
            f"{', '.join(sorted(values))} missing from the {name} document" for values, name in missing if values
        )
    if d.kind == "security":
        return f"{old_name} {_security_text(d.old)}; {new_name} {_security_text(d.new)}"
    return (
        f"media types: {old_name} {', '.join(sorted(d.old)) or 'none'}; {new_name} {', '.join(sorted(d.new)) or 'none'}"
    )


def change_text(d: Difference) -> str:
    """How a change from the previous release reads: "property planets removed"."""
    if d.kind in ("removed", "added"):
        what = f"property {d.path}" if d.path else ""
        node = d.new if d.kind == "added" else d.old
        mark = " (required)" if d.kind == "added" and node is not None and node.required and d.side == "request" else ""
        return " ".join(p for p in (what, d.kind) if p) + mark
    if d.kind == "type":
        return f"{d.subject} type changed from {_types_text(d.old)} to {_types_text(d.new)}"
    if d.kind == "required":
        return f"{d.subject} became {_required_text(d.new)}"
    if d.kind == "enum":
        if d.old is None or d.new is None:
            return f"{d.subject} enum {'set to ' + _enum_text(d.new) if d.old is None else 'removed'}"
        parts = [
            f"{label} {', '.join(sorted(vals))}"
            for label, vals in (("removed", d.old - d.new), ("added", d.new - d.old))
            if vals
        ]
        return f"{d.subject} enum values " + "; ".join(parts)
    if d.kind == "security":
        return f"changed from {_security_text(d.old)} to {_security_text(d.new)}"
    gone, came = sorted(d.old - d.new), sorted(d.new - d.old)
    return "media types " + "; ".join(
        p for p in (f"removed {', '.join(gone)}" * bool(gone), f"added {', '.join(came)}" * bool(came)) if p
    )


# --- the API version -----------------------------------------------------------------------------------------
def major(document: dict) -> int | None:
    match = re.match(r"\s*v?(\d+)", str((document.get("info") or {}).get("version", "")))
    return int(match.group(1)) if match else None


def path_versions(document: dict, pattern: str) -> set[int]:
    """The versions in the document's paths (Swagger 2: after its basePath)."""
    found = set()
    base = str(document.get("basePath") or "").rstrip("/")
    for path in document.get("paths") or {}:
        match = re.match(pattern, base + path)
        if match and match.groups():
            found.add(int(match.group(1)))
    return found


def version_bump(old: dict, new: dict, prefix_pattern: str) -> str:
    """Why the API version moved from old to new (info.version's major, or the highest path prefix), or ""."""
    a, b = major(old), major(new)
    if a is not None and b is not None and b > a:
        return f"info.version major {a} -> {b}"
    pa, pb = path_versions(old, prefix_pattern), path_versions(new, prefix_pattern)
    if pa and pb and max(pb) > max(pa):
        return f"path prefix version {max(pa)} -> {max(pb)}"
    return ""
