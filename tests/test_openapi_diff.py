"""The OpenAPI contract comparison on small documents: $refs (OpenAPI 3 and Swagger 2), cycles, allOf/anyOf, and
which changes between releases are breaking."""

import json

import pytest

from conftest import EXAMPLE
from relcheck.probes.docs import names
from relcheck.probes.openapi_diff import (
    Contract,
    Difference,
    SchemaError,
    change_text,
    differences,
    drift_text,
    parse,
    version_bump,
)


def oas3(schemas: dict, response: dict | None = None, body: dict | None = None, version: str = "1.0.0") -> dict:
    op: dict = {
        "responses": {
            "200": {"content": {"application/json": {"schema": response or {"$ref": "#/components/schemas/Chart"}}}}
        }
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": version},
        "paths": {"/v1/charts": {"post": op}},
        "components": {"schemas": schemas},
    }


CHART = {
    "type": "object",
    "required": ["id", "planets"],
    "properties": {
        "id": {"type": "integer"},
        "planets": {"type": "array", "items": {"$ref": "#/components/schemas/Planet"}},
    },
}
PLANET = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "enum": ["sun", "moon"]}}}


def shape(document: dict, location: str = "response 200") -> dict:
    return Contract(document, "doc").operations["POST /v1/charts"][location].shape


def test_refs_resolve_in_openapi_3_components_and_swagger_2_definitions():
    found = shape(oas3({"Chart": CHART, "Planet": PLANET}))
    assert found["planets[].name"].types == {"string"} and found["planets[].name"].required
    assert found["planets[].name"].enum == {'"sun"', '"moon"'}
    swagger = {
        "swagger": "2.0",
        "info": {"version": "1"},
        "paths": {
            "/v1/charts": {
                "post": {
                    "parameters": [
                        {"in": "body", "name": "b", "required": True, "schema": {"$ref": "#/definitions/Planet"}},
                        {"in": "query", "name": "limit", "type": "integer", "required": False},
                    ],
                    "responses": {"200": {"schema": {"$ref": "#/definitions/Chart"}}},
                }
            }
        },
        "definitions": {
            "Chart": json.loads(json.dumps(CHART).replace("components/schemas", "definitions")),
            "Planet": PLANET,
        },
    }
    assert shape(swagger) == found
    assert shape(swagger, "request body")["name"].required
    assert shape(swagger, "parameter query:limit")[""].types == {"integer"}


def test_a_recursive_schema_is_cut_at_the_repeated_reference_and_still_compared():
    tree = {
        "type": "object",
        "properties": {
            "label": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}},
        },
    }
    found = shape(oas3({"Tree": tree}, {"$ref": "#/components/schemas/Tree"}))
    assert found["children[]"].types == {"recursive Tree"}
    assert set(found) == {"", "label", "children", "children[]"}
    retyped = json.loads(json.dumps(tree).replace('"string"', '"integer"'))
    [d] = differences(
        Contract(oas3({"Tree": tree}, {"$ref": "#/components/schemas/Tree"}), "a"),
        Contract(oas3({"Tree": retyped}, {"$ref": "#/components/schemas/Tree"}), "b"),
    )
    assert drift_text(d) == "property label type: committed string, served integer"
    loop = {"A": {"$ref": "#/components/schemas/B"}, "B": {"$ref": "#/components/schemas/A"}}
    with pytest.raises(SchemaError, match="refers to itself"):
        Contract(oas3(loop, {"$ref": "#/components/schemas/A"}), "doc")


@pytest.mark.parametrize(
    "ref, message",
    [("#/components/schemas/Missing", "does not resolve"), ("other.json#/Chart", "is not local")],
)
def test_a_ref_that_cannot_be_resolved_is_an_error_never_an_empty_schema(ref, message):
    with pytest.raises(SchemaError, match=message):
        Contract(oas3({}, {"$ref": ref}), "doc")


def test_documents_that_are_not_openapi_are_errors_naming_them():
    with pytest.raises(SchemaError, match=r"^docs.openapi_file does not parse"):
        parse("{not json", "docs.openapi_file")
    with pytest.raises(SchemaError, match="is not an OpenAPI document"):
        parse("[]", "docs.openapi_file")
    assert parse("openapi: 3.0.0\npaths: {}\n", "yaml")["openapi"] == "3.0.0"


def test_all_of_merges_and_any_of_unites():
    schemas = {
        "Base": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
        "Chart": {
            "allOf": [{"$ref": "#/components/schemas/Base"}],
            "properties": {"ayanamsa": {"anyOf": [{"type": "string", "enum": ["lahiri"]}, {"type": "null"}]}},
        },
    }
    found = shape(oas3(schemas))
    assert found["id"].required and found["id"].types == {"integer"}
    assert found["ayanamsa"].types == {"string", "null"} and found["ayanamsa"].enum == {'"lahiri"'}
    assert not found["ayanamsa"].required


def changes(old: dict, new: dict) -> list[tuple[bool, str]]:
    return [
        (d.breaking, f"{d.where}: {change_text(d)}") for d in differences(Contract(old, "old"), Contract(new, "new"))
    ]


def with_chart(**properties) -> dict:
    chart = json.loads(json.dumps(CHART))
    chart["properties"].update(properties)
    return oas3({"Chart": chart, "Planet": PLANET})


def test_breaking_and_additive_changes_between_releases():
    base = oas3({"Chart": CHART, "Planet": PLANET})
    assert changes(base, base) == []
    assert changes(with_chart(sign={"type": "string"}), base) == [
        (True, "POST /v1/charts response 200: property sign removed")
    ]
    assert changes(base, with_chart(sign={"type": "string"})) == [
        (False, "POST /v1/charts response 200: property sign added")
    ]
    assert changes(base, with_chart(id={"type": "string"})) == [
        (True, "POST /v1/charts response 200: property id type changed from integer to string")
    ]
    fewer = json.loads(json.dumps(base).replace('["sun", "moon"]', '["sun"]'))
    assert changes(base, fewer) == [
        (True, 'POST /v1/charts response 200: property planets[].name enum values removed "moon"')
    ]
    assert changes(fewer, base) == [
        (False, 'POST /v1/charts response 200: property planets[].name enum values added "moon"')
    ]
    body = {"type": "object", "required": ["date"], "properties": {"date": {"type": "string"}}}
    more = json.loads(json.dumps(body))
    more["properties"]["place"] = {"type": "string"}
    required = json.loads(json.dumps(more))
    required["required"].append("place")
    assert changes(
        oas3({"Chart": CHART, "Planet": PLANET}, body=body), oas3({"Chart": CHART, "Planet": PLANET}, body=more)
    ) == [(False, "POST /v1/charts request body: property place added")]
    assert changes(
        oas3({"Chart": CHART, "Planet": PLANET}, body=body), oas3({"Chart": CHART, "Planet": PLANET}, body=required)
    ) == [(True, "POST /v1/charts request body: property place added (required)")]
    assert changes(
        oas3({"Chart": CHART, "Planet": PLANET}, body=more), oas3({"Chart": CHART, "Planet": PLANET}, body=required)
    ) == [(True, "POST /v1/charts request body: property place became required")]
    gone = json.loads(json.dumps(base))
    gone["paths"] = {}
    assert changes(base, gone) == [(True, "POST /v1/charts operation: removed")]


def test_security_changes_are_breaking_when_an_old_client_may_not_meet_them():
    base = oas3({"Chart": CHART, "Planet": PLANET})
    bearer = json.loads(json.dumps(base))
    bearer["paths"]["/v1/charts"]["post"]["security"] = [{"HTTPBearer": []}]
    either = json.loads(json.dumps(bearer))
    either["paths"]["/v1/charts"]["post"]["security"].append({"ApiKey": []})
    assert changes(base, bearer) == [(True, "POST /v1/charts security: changed from none to HTTPBearer")]
    assert changes(bearer, either) == [
        (False, "POST /v1/charts security: changed from HTTPBearer to ApiKey or HTTPBearer")
    ]
    assert changes(either, bearer) == [
        (True, "POST /v1/charts security: changed from ApiKey or HTTPBearer to HTTPBearer")
    ]
    [d] = differences(Contract(bearer, "a"), Contract(base, "b"))
    assert not d.breaking and drift_text(d) == "committed HTTPBearer; served none"


def test_an_api_version_bump_is_the_major_or_the_path_prefix():
    base = oas3({"Chart": CHART, "Planet": PLANET})
    prefix = r"^/v(\d+)(?:/|$)"
    assert (
        version_bump(base, oas3({"Chart": CHART, "Planet": PLANET}, version="2.0.0"), prefix)
        == "info.version major 1 -> 2"
    )
    moved = json.loads(json.dumps(base).replace("/v1/charts", "/v2/charts"))
    assert version_bump(base, moved, prefix) == "path prefix version 1 -> 2"
    swagger = {"swagger": "2.0", "info": {"version": "1.23"}, "basePath": "/v1", "paths": {"/buckets": {}}}
    assert version_bump(swagger, {**swagger, "basePath": "/v2/"}, prefix) == "path prefix version 1 -> 2"
    assert version_bump(base, oas3({"Chart": CHART, "Planet": PLANET}, version="1.9.0"), prefix) == ""


def test_the_reference_services_committed_document_matches_itself_and_its_previous_release_only_adds():
    document = json.loads((EXAMPLE / "docs" / "openapi.json").read_text())
    contract = Contract(document, "committed")
    assert differences(contract, contract) == []
    renamed = json.loads(json.dumps(document).replace('"planets"', '"planet_list"'))
    texts = [f"{d.where}: {drift_text(d)}" for d in differences(contract, Contract(renamed, "served"))]
    assert "GET /v1/kundli/{chart_id} response 200: property planets missing from the served document" in texts


def test_release_notes_name_a_breaking_change_by_its_property_parameter_or_operation():
    nested = Difference("GET /v1/kundli/{chart_id}", "response 200", "removed", "planets[].name", side="response")
    limit = Difference("GET /v1/admin/audit", "parameter query:limit", "type", side="request")
    gone = Difference("DELETE /v1/kundli/{chart_id}", "", "removed")
    notes = ["Removed `name` from each planet", "`limit` is an integer now", "Dropped DELETE /v1/kundli/{chart_id}"]
    assert all(names(notes, change) for change in (nested, limit, gone))
    assert not names(["Removed name from each planet", "GET /v1/kundli/{chart_id} is faster"], nested)
    assert not names(["limit is an integer now"], limit) and not names(["Dropped deleting charts"], gone)
    assert not names([], gone)
