"""The OpenAPI document is true: what it says about every operation (error answers as problem+json,
headers, amounts as decimal strings, nullable fields) is what the service does, and what the service
answers validates against it. The full check is schemathesis (tests/api/run_schemathesis.sh); these
are the rules of the shared mechanism, each pinned by a case."""

from __future__ import annotations

import re

import jsonschema_rs
import pytest

from cairn.db import MAX_ID
from cairn.errors import PROBLEM_JSON

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def spec(app):
    with app.test_client() as client:
        return client.get("/api/v1/openapi.json").json


def _operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/components/"):
        kind, name = node["$ref"].split("/")[2:4]
        node = spec["components"][kind][name]
    return node


def _validate(spec, path, method, response):
    """The response's body validates against what the document says for its status and type."""
    documented = _resolve(spec, spec["paths"][path][method]["responses"][str(response.status_code)])
    content = documented["content"][response.mimetype]
    schema = {"components": spec["components"], **content["schema"]}
    errors = [str(e).splitlines()[0] for e in jsonschema_rs.Draft202012Validator(schema).iter_errors(response.json)]
    assert errors == [], (method, path, response.status_code, errors[:5])


def _walk(node, at=()):
    if isinstance(node, dict):
        yield at, node
        for key, value in node.items():
            yield from _walk(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*at, index))


# --- amounts --------------------------------------------------------------------------------------


def test_no_minimum_or_maximum_is_published_as_text(spec):
    bad = [
        at
        for at, node in _walk(spec)
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        if key in node and not isinstance(node[key], (int, float))
    ]
    assert bad == []


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ("CIWrite", "purchase_cost"),
        ("CI", "purchase_cost"),
        ("ContractWrite", "cost"),
        ("Contract", "recurring_cost"),
        ("Licence", "cost"),
        ("Maintenance", "cost"),
        ("Cost", "tco"),
        ("Cost", "book_value"),
        ("Policy", "salvage_percent"),
        ("PolicyWrite", "declining_factor"),
    ],
)
def test_amounts_are_documented_as_decimal_strings(spec, schema, field):
    prop = spec["components"]["schemas"][schema]["properties"][field]
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    assert "string" in types and "number" not in types
    assert prop["format"] == "decimal" and prop["pattern"].startswith("^") and prop["pattern"].endswith("$")


def test_amounts_travel_as_strings_in_the_range_the_pattern_says(client, admin, spec):
    vendor = client.post("/api/v1/vendors", headers=admin, json={"name": "Amounts Inc"}).json
    base = {"vendor_id": vendor["id"], "type": "support", "start_date": "2025-01-01", "end_date": "2025-12-31"}
    pattern = re.compile(spec["components"]["schemas"]["ContractWrite"]["properties"]["cost"]["pattern"])
    for cost in (12.5, "12.345", "-1", "1e3", "1000000000000", " 12", "NaN", "١٢"):
        response = client.post("/api/v1/contracts", headers=admin, json={**base, "cost": cost})
        assert response.status_code == 422 and "cost" in response.json["errors"], cost
        assert not (isinstance(cost, str) and pattern.fullmatch(cost)), cost
    for cost, shown in (("12.5", "12.50"), ("0", "0.00"), ("999999999999.99", "999999999999.99")):
        assert pattern.fullmatch(cost)
        response = client.post("/api/v1/contracts", headers=admin, json={**base, "cost": cost})
        assert response.status_code == 201 and response.json["cost"] == shown, response.json
        _validate(spec, "/api/v1/contracts", "post", response)
    policies = client.get("/api/v1/asset-classes", headers=admin)
    assert policies.json[0]["salvage_percent"] == "0.00" and policies.json[0]["declining_factor"] == "2.00"
    _validate(spec, "/api/v1/asset-classes", "get", policies)


def test_percentages_accept_exactly_what_their_pattern_says(client, admin, spec):
    schema = spec["components"]["schemas"]["PolicyWrite"]["properties"]
    for field, good, bad in (
        ("salvage_percent", ("0", "100", "100.00", "99.99", "7.5"), ("100.01", "101", "-0", "7.555", "1000")),
        ("declining_factor", ("0.5", "0.55", "10", "10.0", "2"), ("0.49", "10.01", "0", "11", "05")),
    ):
        pattern = re.compile(schema[field]["pattern"])
        for value in good:
            assert pattern.fullmatch(value), value
            response = client.put("/api/v1/asset-classes/server", headers=admin, json={field: value})
            assert response.status_code == 200, (field, value, response.json)
        for value in bad:
            assert not pattern.fullmatch(value), value
            response = client.put("/api/v1/asset-classes/server", headers=admin, json={field: value})
            assert response.status_code == 422, (field, value)


# --- errors ---------------------------------------------------------------------------------------


def test_every_error_answer_is_documented_as_problem_json(spec):
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    for path, method, operation in _operations(spec):
        assert "default" not in operation["responses"], (method, path)
        for status, response in operation["responses"].items():
            response = _resolve(spec, response)
            if int(status) >= 400:
                assert set(response["content"]) == {PROBLEM_JSON}, (method, path, status)
                assert response["content"][PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_the_kernel_statuses_are_documented_where_they_can_happen(spec):
    for path, method, operation in _operations(spec):
        statuses = set(operation["responses"])
        assert {"401", "403", "422", "503"} <= statuses, (method, path)
        if "{" in path:
            assert "404" in statuses, (method, path)
        if method != "get":
            assert {"409", "412"} <= statuses, (method, path)
        if method in ("post", "put", "patch"):
            assert {"400", "413", "415"} <= statuses, (method, path)
    assert "404" in spec["paths"]["/api/v1/cis"]["get"]["responses"], "owner_team_id=<past the range> is 404"


def test_error_answers_validate_against_the_document(client, admin, spec, make):
    ci = make.ci()
    for response, path, method in (
        (client.get("/api/v1/cis"), "/api/v1/cis", "get"),
        (client.get("/api/v1/cis?bogus=1", headers=admin), "/api/v1/cis", "get"),
        (client.get(f"/api/v1/cis/{MAX_ID}", headers=admin), "/api/v1/cis/{ci_id}", "get"),
        (client.get("/api/v1/users", headers=make.headers("requester")), "/api/v1/users", "get"),
        (client.post("/api/v1/cis", headers=admin, data="{", content_type="application/json"), "/api/v1/cis", "post"),
        (client.post("/api/v1/cis", headers=admin, data="x", content_type="text/plain"), "/api/v1/cis", "post"),
        (
            client.patch(f"/api/v1/cis/{ci.id}", headers={**admin, "If-Match": '"x"'}, json={}),
            "/api/v1/cis/{ci_id}",
            "patch",
        ),
    ):
        assert response.mimetype == PROBLEM_JSON, response.status_code
        _validate(spec, path, method, response)


# --- headers and conditional requests -------------------------------------------------------------


def test_pagination_and_etag_headers_are_documented(spec):
    header = spec["components"]["headers"]["PAGINATION"]
    assert header["schema"]["type"] == "string"
    assert header["schema"]["contentSchema"] == {"$ref": "#/components/schemas/PaginationMetadata"}
    assert spec["components"]["headers"]["ETAG"]["schema"] == {"type": "string"}
    listed = spec["paths"]["/api/v1/cis"]["get"]["responses"]["200"]
    assert listed["headers"]["X-Pagination"] == {"$ref": "#/components/headers/PAGINATION"}
    one = spec["paths"]["/api/v1/cis/{ci_id}"]["get"]["responses"]
    assert one["200"]["headers"]["ETag"] == {"$ref": "#/components/headers/ETAG"} and "304" in one
    assert (
        one["200"]["headers"]["ETag"]
        == spec["paths"]["/api/v1/cis/{ci_id}"]["patch"]["responses"]["200"]["headers"]["ETag"]
    )


def test_weak_etags_match_if_none_match_but_never_if_match(client, admin, make):
    url = f"/api/v1/cis/{make.ci().id}"
    etag = client.get(url, headers=admin).headers["ETag"]
    assert etag.startswith('"')
    for header in (etag, f"W/{etag}", f'"other", W/{etag}', "*"):
        response = client.get(url, headers={**admin, "If-None-Match": header})
        assert response.status_code == 304 and response.data == b"", header
    assert client.get(url, headers={**admin, "If-None-Match": 'W/"other"'}).status_code == 200
    weak = client.patch(url, headers={**admin, "If-Match": f"W/{etag}"}, json={"name": "weak"})
    assert weak.status_code == 412 and weak.mimetype == PROBLEM_JSON
    assert client.delete(url, headers={**admin, "If-Match": f"W/{etag}"}).status_code == 412
    strong = client.patch(url, headers={**admin, "If-Match": f'"other", {etag}'}, json={"name": "strong"})
    assert strong.status_code == 200 and strong.json["name"] == "strong"


# --- answers that broke their schema --------------------------------------------------------------


def test_token_dates_are_nullable_as_documented(client, admin, spec):
    token = spec["components"]["schemas"]["Token"]["properties"]
    for field in ("expires_at", "revoked_at", "last_used_at"):
        assert "null" in token[field]["type"], field
    created = client.post("/api/v1/tokens", headers=admin, json={"name": "t"})
    assert created.status_code == 201 and created.json["revoked_at"] is None
    _validate(spec, "/api/v1/tokens", "post", created)
    _validate(spec, "/api/v1/tokens", "get", client.get("/api/v1/tokens", headers=admin))


def test_impact_answers_validate_with_as_of_and_open_tickets(client, admin, spec, make):
    ci = make.ci()
    answer = client.get(f"/api/v1/cis/{ci.id}/impact?as_of=2020-01-01T00:00:00Z", headers=admin)
    assert answer.status_code == 200 and "as_of" in answer.json and "open_tickets" in answer.json
    _validate(spec, "/api/v1/cis/{ci_id}/impact", "get", answer)
    costs = client.get(f"/api/v1/cis/{ci.id}/costs", headers=admin)
    _validate(spec, "/api/v1/cis/{ci_id}/costs", "get", costs)


# --- what JSON and the query string say ------------------------------------------------------------


def test_json_types_are_json_schemas(client, admin, make):
    """3.0 is the integer 3; 0, "yes" and "true" are no booleans; "3.5" is no number."""
    team = make.team()
    created = client.post(
        "/api/v1/teams", headers=admin, json={"name": "floats", "member_ids": [float(make.user().id)]}
    )
    assert created.status_code == 201, created.json
    for active in (0, 1, "true", "yes", None):
        response = client.post(
            "/api/v1/users", headers=admin, json={"email": f"b{active}@x.example", "role": "agent", "active": active}
        )
        assert response.status_code == 422 and "active" in response.json["errors"], active
    ticket = {"kind": "incident", "title": "t", "team_id": team.id}
    for field, value in (("impact", "1"), ("impact", 1.5), ("urgency", True), ("team_id", f"{team.id}")):
        response = client.post("/api/v1/tickets", headers=admin, json={**ticket, field: value})
        assert response.status_code == 422 and field in response.json["errors"], (field, value)
    assert client.post("/api/v1/tickets", headers=admin, json={**ticket, "impact": 1.0}).json["impact"] == 1


def test_query_integers_read_whole_numbers_in_any_notation(client, admin, make):
    ci = make.ci(owner_team_id=make.team().id)
    for text in (str(ci.owner_team_id), f"{ci.owner_team_id}.0", f"{ci.owner_team_id}e0"):
        response = client.get(f"/api/v1/cis?owner_team_id={text}&page=1.0&page_size=5e1", headers=admin)
        assert response.status_code == 200 and [c["id"] for c in response.json] == [ci.id], text
    assert client.get(f"/api/v1/cis?owner_team_id={ci.owner_team_id}.5", headers=admin).status_code == 422


def test_nul_in_the_query_string_is_422_naming_the_parameter(client, admin):
    response = client.get("/api/v1/cis?q=a%00b", headers=admin)
    assert response.status_code == 422 and "q" in response.json["errors"]


def test_path_ids_past_the_range_are_404_on_every_route(client, admin, make):
    ticket = client.post("/api/v1/tickets", headers=admin, json={"kind": "incident", "title": "t"}).json
    for path in (
        f"/api/v1/tickets/{ticket['id']}/cis/144115188075855873",
        f"/api/v1/tickets/{ticket['id']}/cis/0",
        f"/api/v1/tickets/{MAX_ID + 1}/cis/1",
    ):
        response = client.delete(path, headers=admin)
        assert response.status_code == 404 and response.mimetype == PROBLEM_JSON, path


def test_an_upload_with_unknown_form_fields_is_422(client, admin):
    import io

    ticket = client.post("/api/v1/tickets", headers=admin, json={"kind": "incident", "title": "t"}).json
    data = {"file": (io.BytesIO(b"hello"), "a.txt"), "note": "not a field"}
    response = client.post(f"/api/v1/tickets/{ticket['id']}/attachments", headers=admin, data=data)
    assert response.status_code == 422 and "note" in response.json["errors"]


def test_raw_bodies_are_documented(spec):
    for path, media_type in (
        ("/api/v1/imports/cis", "text/csv"),
        ("/api/v1/imports/relationships", "text/csv"),
        ("/api/v1/inbound-email", "message/rfc822"),
    ):
        body = spec["paths"][path]["post"]["requestBody"]
        assert body["required"] is True and body["content"][media_type]["schema"]["type"] == "string"
