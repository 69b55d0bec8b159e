"""Unknown query parameters are 422 naming them, on every endpoint, as unknown body fields are; the
parameters an endpoint documents keep working."""

from __future__ import annotations

import re

import pytest

from cairn.api import UNKNOWN_QUERY_PARAMETER

# A path value each converter accepts (the check answers before the view looks anything up, except
# for reports, whose own parameter schema names the unknown ones).
VALUES = {"name": "licence-compliance", "ci_class": "laptop", "source": "itam", "external_id": "x-1"}


def _concrete(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: VALUES.get(m.group(1), "1"), rule)


def _api_routes(app, method: str):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if (
            method in rule.methods
            and rule.rule.startswith("/api/v1/")
            and not rule.endpoint.startswith(("api-docs.", "docs."))
        ):
            yield rule


def test_every_get_endpoint_names_an_unknown_query_parameter(app, client, admin):
    checked, wrong = 0, []
    for rule in _api_routes(app, "GET"):
        response = client.get(_concrete(rule.rule) + "?bogus=1&colour=red", headers=admin)
        body = response.json if response.is_json else None
        errors = body.get("errors") or {} if isinstance(body, dict) else {}
        if response.status_code != 422 or not {"bogus", "colour"} <= set(errors):
            wrong.append(f"{rule.rule}: {response.status_code} {response.get_data(as_text=True)[:200]}")
        else:
            assert response.mimetype == "application/problem+json"
        checked += 1
    assert checked > 40 and wrong == []


def test_the_list_endpoints_include_the_ones_users_misspell(client, admin, make):
    make.ci("laptop", name="mine")
    response = client.get("/api/v1/cis?ci_clas=server", headers=admin)
    assert response.status_code == 422
    body = response.json
    assert body["detail"] == "Unknown query parameter: ci_clas."
    assert body["errors"]["ci_clas"][0].startswith(UNKNOWN_QUERY_PARAMETER)
    assert "ci_class" in body["errors"]["ci_clas"][0]  # it says what the endpoint takes
    # Writes too: the query string of a POST is checked the same way.
    posted = client.post("/api/v1/cis?dryrun=1", headers=admin, json={"name": "x", "ci_class": "server"})
    assert posted.status_code == 422 and "dryrun" in posted.json["errors"]
    # Unauthenticated callers still learn nothing but 401.
    assert client.get("/api/v1/cis?bogus=1").status_code == 401


def test_documented_parameters_are_accepted(app, client, admin):
    """Every query parameter the OpenAPI document declares for an operation passes the check (its
    value may still be invalid): documentation and parser say the same."""
    spec = client.get("/api/v1/openapi.json").json
    rejected = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post"):
                continue
            names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
            if not names:
                continue
            url = "/api/v1" + re.sub(r"\{([^}]+)\}", lambda m: VALUES.get(m.group(1), "1"), path)
            for name in names:
                response = client.open(url, method=method.upper(), headers=admin, query_string={name: "1"})
                body = response.json if response.is_json else None
                errors = body.get("errors") or {} if isinstance(body, dict) else {}
                if any(UNKNOWN_QUERY_PARAMETER in str(m) for m in errors.get(name, [])):
                    rejected.append(f"{method.upper()} {path}?{name}")
    assert rejected == []


@pytest.mark.parametrize(
    "url",
    ["/api/v1/cis?page=1&page_size=5", "/api/v1/cis?format=csv", "/api/v1/reports/licence-compliance?format=csv",
     "/api/v1/relationships?page_size=10&include_closed=true", "/api/v1/cis/{ci}/graph?format=dot&depth=1",
     "/api/v1/reports/licence-compliance.svg?status=compliant"],
)  # fmt: skip
def test_paging_and_format_keep_working(client, admin, make, url):
    ci = make.ci("server")
    response = client.get(url.format(ci=ci.id), headers=admin)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


def test_page_on_an_endpoint_without_paging_is_unknown(client, admin):
    response = client.get("/api/v1/relationship-types?page=2", headers=admin)
    assert response.status_code == 422 and "page" in response.json["errors"]


def test_a_report_names_its_own_unknown_parameters(client, admin):
    response = client.get("/api/v1/reports/licence-compliance?stauts=compliant", headers=admin)
    assert response.status_code == 422 and "stauts" in response.json["errors"]


def test_teams_and_users_are_searched_by_q(client, admin, make):
    make.team(name="Network Operations")
    make.team(name="Service Desk")
    make.user("agent", email="radia.perlman@example.com", name="Radia Perlman")
    make.user("agent", email="ken@example.com", name="Ken Thompson")

    def names(url):
        response = client.get(url, headers=admin)
        assert response.status_code == 200, response.json
        return [item["name"] for item in response.json]

    assert names("/api/v1/teams?q=network") == ["Network Operations"]
    assert names("/api/v1/teams?q=DESK") == ["Service Desk"]
    assert names("/api/v1/teams?q=%25") == []  # % is a plain character
    assert names("/api/v1/users?q=PERLMAN") == ["Radia Perlman"]
    assert names("/api/v1/users?q=ken%40example") == ["Ken Thompson"]
    assert names("/api/v1/users?q=_") == []
