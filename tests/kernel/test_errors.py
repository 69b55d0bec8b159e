"""Every error is RFC 9457 problem+json, and nothing the client sends causes a 500."""

import json
import logging

from cairn.errors import PROBLEM_JSON


def _is_problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.json
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    return body


def test_unknown_route_is_404_problem(client):
    _is_problem(client.get("/api/v1/no-such-thing"), 404)
    _is_problem(client.get("/nowhere"), 404)


def test_wrong_method_is_405_with_allow(client, admin):
    response = client.put("/api/v1/cis", headers=admin, json={})
    _is_problem(response, 405)
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


def test_wrong_content_type_is_415_and_changes_nothing(client, admin):
    before = client.get("/api/v1/cis", headers=admin).headers["X-Pagination"]
    response = client.post(
        "/api/v1/cis", headers=admin, data="name=x", content_type="application/x-www-form-urlencoded"
    )
    _is_problem(response, 415)
    assert client.get("/api/v1/cis", headers=admin).headers["X-Pagination"] == before


def test_malformed_json_is_400(client, admin):
    response = client.post("/api/v1/cis", headers=admin, data='{"name": ', content_type="application/json")
    body = _is_problem(response, 400)
    assert "JSON" in body["detail"]


def test_invalid_fields_are_422_with_field_errors(client, admin):
    response = client.post(
        "/api/v1/cis",
        headers=admin,
        json={"name": "x" * 100_000, "ci_class": "toaster", "purchase_cost": "-5", "colour": "red"},
    )
    body = _is_problem(response, 422)
    assert set(body["errors"]) >= {"name", "ci_class", "purchase_cost", "colour"}


def test_body_too_large_is_413(app, client, admin):
    previous = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        response = client.post("/api/v1/cis", headers=admin, json={"name": "x" * 2000, "ci_class": "server"})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = previous
    _is_problem(response, 413)


def test_huge_page_size_is_422_and_huge_page_is_empty(client, admin):
    _is_problem(client.get("/api/v1/cis?page_size=100000", headers=admin), 422)
    _is_problem(client.get("/api/v1/cis?page=0", headers=admin), 422)
    response = client.get(f"/api/v1/cis?page={10**30}", headers=admin)
    assert response.status_code == 200 and response.json == []


def test_ids_beyond_the_column_range_are_404(client, admin):
    _is_problem(client.get(f"/api/v1/cis/{10**20}", headers=admin), 404)
    _is_problem(client.patch(f"/api/v1/cis/{2**31}", headers=admin, json={"name": "x"}), 404)


def test_unexpected_error_is_500_without_a_stack_trace(app):
    from cairn.errors import handle_unexpected

    with app.test_request_context("/api/v1/cis"):
        try:
            raise RuntimeError("secret internals: /etc/passwd")
        except RuntimeError as exc:
            response = handle_unexpected(exc)
    body = json.loads(response.get_data())
    assert response.status_code == 500
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["status"] == 500


def test_request_id_is_echoed_or_generated(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    # A request id that could smuggle something into logs is replaced, not echoed.
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"}).headers["X-Request-ID"]
    assert replaced != "bad id <script>" and len(replaced) == 32


def test_problem_carries_the_request_id(client):
    body = client.get("/api/v1/cis", headers={"X-Request-ID": "trace-me"}).json
    assert body["instance"] == "urn:request:trace-me"


def test_logs_are_json_with_request_id(client, admin, capfd):
    logger = logging.getLogger("cairn")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        client.get("/api/v1/me", headers={**admin, "X-Request-ID": "log-line-42"})
    finally:
        logger.setLevel(level)
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == "log-line-42"]
    assert access, lines
    assert access[-1]["path"] == "/api/v1/me" and access[-1]["status"] == 200
    assert access[-1]["actor"].startswith("admin")


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["checks"]["database"] == "ok"


def test_openapi_and_docs_are_public(client):
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    assert "/cis" in " ".join(spec.json["paths"])
    assert spec.json["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert client.get("/api/v1/docs").status_code == 200
