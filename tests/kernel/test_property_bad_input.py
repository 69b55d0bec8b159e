"""Generated bodies sent to every write endpoint: never a 500, and a refused request writes nothing.

Bodies are sent as JSON text of our own (``encode``), so that they can hold what a client can send
but Python's encoder cannot write: integers of thousands of digits, nesting a thousand deep, lone
surrogates (the escape ``\\udfff``)."""

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog


class Raw(str):
    """JSON text written into the body as is (a number or a structure Python would not encode)."""


def encode(value) -> bytes:
    """``value`` as JSON text: ``Raw`` parts verbatim, strings with ASCII escapes (a lone surrogate
    goes out as the six characters ``\\udfff``, as a client would send it)."""

    def text(item) -> str:
        if isinstance(item, Raw):
            return str(item)
        if isinstance(item, dict):
            return "{" + ",".join(f"{json.dumps(str(k))}:{text(v)}" for k, v in item.items()) + "}"
        if isinstance(item, list):
            return "[" + ",".join(text(v) for v in item) + "]"
        return json.dumps(item)

    return text(value).encode()


def _nested(depth: int, kind: str) -> Raw:
    return Raw("[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth)


# What parsing alone used to turn into a 500 (RecursionError, ValueError, UnicodeEncodeError in the
# driver), and ids past the database range, or sent as whole-number floats.
hostile_scalars = st.one_of(
    st.integers(min_value=21, max_value=5000).map(lambda n: Raw("9" * n)),
    st.sampled_from([Raw("1" * 4301), Raw("-" + "7" * 4301)]),
    st.builds(_nested, st.integers(min_value=65, max_value=3000), st.sampled_from(["list", "dict"])),
    st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3).map(lambda s: "t" + s),
    st.sampled_from(["t\udfff", "\ud800", "a\udbff\udbff"]),
    st.sampled_from([3.0, 2**31, 99999999999, 2**63, 10**20]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["", "2025-02-30", "2025-01-01", "1e400", "-1", "NaN", "x" * 5000, "\x00", "critical", "server"]),
    hostile_scalars,
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
            st.dictionaries(st.sampled_from(keys), hostile_scalars, min_size=1, max_size=2),
            json_values,
        )

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(body=bodies)
        def run(body):
            before = db.session.scalar(select(func.max(ChangeLog.id)))
            response = client.open(
                concrete(rule), method=method, headers=admin, data=encode(body), content_type="application/json"
            )
            shown = repr(body)[:300]
            assert response.status_code < 500, (method, rule, shown, response.get_data(as_text=True)[:500])
            if response.status_code >= 400:
                assert response.mimetype == "application/problem+json"
                assert db.session.scalar(select(func.max(ChangeLog.id))) == before, (method, rule, shown)

        run()

    for method, rule in routes:
        if method != "DELETE":
            check(method, rule)
