"""Generated bodies sent to every write endpoint: never a 500, and a refused request writes nothing."""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["", "2025-02-30", "2025-01-01", "1e400", "-1", "NaN", "x" * 5000, "\x00", "critical", "server"]),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _write_routes(app):
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            routes.append((method, rule.rule))
    return sorted(routes)


def _body_keys(app, client, method, rule):
    spec = client.get("/api/v1/openapi.json").json
    path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule).removeprefix("/api/v1")
    operation = spec["paths"].get(path, {}).get(method.lower(), {})
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return sorted(schema.get("properties", {}))


def test_generated_bodies_never_cause_a_500_or_a_partial_write(app, db, client, make):
    admin = make.headers("admin")
    ci = make.ci()
    ids = {"ci_id": ci.id, "user_id": make.user("agent").id, "team_id": make.team().id,
           "location_id": make.location().id}  # fmt: skip
    routes = _write_routes(app)
    assert ("POST", "/api/v1/cis") in routes and ("PATCH", "/api/v1/cis/<int:ci_id>") in routes
    keys_by_route = {(m, r): _body_keys(app, client, m, r) for m, r in routes}

    def concrete(rule):
        return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: str(ids.get(m.group(1), 1)), rule)

    def check(method, rule):
        keys = keys_by_route[(method, rule)] or ["name"]
        bodies = st.one_of(
            st.dictionaries(st.sampled_from(keys), json_values, max_size=len(keys)),
            st.dictionaries(st.text(max_size=10), json_values, max_size=3),
            json_values,
        )

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(body=bodies)
        def run(body):
            before = db.session.scalar(select(func.max(ChangeLog.id)))
            response = client.open(concrete(rule), method=method, headers=admin, json=body)
            assert response.status_code < 500, (method, rule, body, response.get_data(as_text=True)[:500])
            if response.status_code >= 400:
                assert response.mimetype == "application/problem+json"
                assert db.session.scalar(select(func.max(ChangeLog.id))) == before, (method, rule, body)

        run()

    for method, rule in routes:
        if method != "DELETE":
            check(method, rule)
