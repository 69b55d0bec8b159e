"""Checking an answer against what the OpenAPI document says of it."""

from __future__ import annotations

import jsonschema_rs


def assert_documented(spec: dict, path: str, method: str, response) -> None:
    """The response's body validates against the schema ``spec`` documents for ``path``, ``method``
    and the response's status and media type (response references resolved)."""
    documented = spec["paths"][path][method]["responses"][str(response.status_code)]
    while "$ref" in documented:
        documented = spec["components"]["responses"][documented["$ref"].rsplit("/", 1)[1]]
    schema = {"components": spec["components"], **documented["content"][response.mimetype]["schema"]}
    errors = [str(e).splitlines()[0] for e in jsonschema_rs.Draft202012Validator(schema).iter_errors(response.json)]
    assert errors == [], (method, path, response.status_code, errors[:5])
