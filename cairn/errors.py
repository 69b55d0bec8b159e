"""RFC 9457 problem details for every error the service returns."""

from __future__ import annotations

import logging

from flask import current_app, g, request
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
# app.extensions key: a callable (status, detail, headers) -> response or None, set by the web desk to
# answer page requests with a page; None means "not a page request", and problem+json is sent.
ERROR_PAGE = "cairn.error_page"
log = logging.getLogger("cairn.errors")

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class DomainError(Exception):
    """A rule of the domain was broken by the caller's input; services raise it, routes don't catch
    it: the handler below rolls back and answers with ``status`` as problem+json."""

    status = 400

    def __init__(self, detail: str, *, errors: dict | None = None, **extra):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class Invalid(DomainError):
    status = 422


class Forbidden(DomainError):
    """The caller's role or relation to the object does not allow this (403)."""

    status = 403


class Conflict(DomainError):
    status = 409


class NotFound(DomainError):
    status = 404


def problem(
    status: int,
    detail: str | None = None,
    *,
    errors: dict | None = None,
    headers=None,
    type_: str | None = None,
    **extra,
):
    """Build a problem+json response (or, for a web page, the error page the web desk renders)."""
    error_page = current_app.extensions.get(ERROR_PAGE)
    if error_page is not None:
        page = error_page(status, detail or TITLES.get(status, "Error"), headers or {})
        if page is not None:
            return page
    body = {
        "type": type_ or "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail or TITLES.get(status, "Error"),
    }
    if errors:
        body["errors"] = errors
    request_id = getattr(g, "request_id", None)
    if request_id:
        body["instance"] = f"urn:request:{request_id}"
    body.update(extra)
    response = current_app.json.response(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def flatten_field_errors(messages) -> dict:
    """webargs nests errors under the location (json, query); clients want {field: [messages]}."""
    if not isinstance(messages, dict):
        return {"_schema": messages if isinstance(messages, list) else [str(messages)]}
    if set(messages) <= {"json", "query", "form", "files", "headers", "view_args", "path"}:
        flat: dict = {}
        for location_errors in messages.values():
            flat.update(flatten_field_errors(location_errors))
        return flat
    return messages


_WEBARGS_KEYS = {"message", "messages", "errors", "headers", "exc", "schema"}


def handle_http_exception(error: HTTPException):
    data = getattr(error, "data", None) or {}
    raw_errors = data.get("errors", data.get("messages"))
    errors = flatten_field_errors(raw_errors) if raw_errors else None
    detail = data.get("message") or error.description
    if errors and not data.get("message"):
        if error.code == 422:
            detail = "Some fields are invalid."
        elif error.code == 400:
            schema_errors = errors.pop("_schema", None)
            detail = schema_errors[0] if schema_errors else "The request is malformed."
            errors = errors or None
    extra = {
        k: v
        for k, v in data.items()
        if k not in _WEBARGS_KEYS and isinstance(v, (str, int, float, bool, list, dict, type(None)))
    }
    headers = dict(data.get("headers") or {})
    if error.code == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    return problem(error.code or 500, detail, errors=errors, headers=headers, **extra)


def handle_domain_error(error: DomainError):
    from cairn.db import db

    db.session.rollback()
    return problem(error.status, error.detail, errors=error.errors, **error.extra)


def handle_integrity_error(error: IntegrityError):
    from cairn.db import db

    db.session.rollback()
    log.info("integrity error: %s", error.orig)
    return problem(409, "The request conflicts with existing data (a duplicate or a missing reference).")


def handle_data_error(error: DataError):
    from cairn.db import db

    db.session.rollback()
    log.warning("data error reached the database: %s", error.orig)
    return problem(422, "A value is malformed or out of range for storage.")


def handle_stale_data(error: StaleDataError):
    from cairn.db import db

    db.session.rollback()
    return problem(412, "The object was changed by someone else meanwhile; fetch it again and retry.")


def handle_operational_error(error: OperationalError):
    from cairn.db import db

    db.session.rollback()
    log.exception("database unavailable or busy")
    return problem(503, "The database is unavailable or busy; try again.", headers={"Retry-After": "5"})


def handle_unexpected(error: Exception):
    from cairn.db import db

    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the original error is what matters
        pass
    from cairn.http import logged_path

    log.exception("unhandled error on %s %s", request.method, logged_path())
    return problem(500, "An internal error occurred; it has been logged with the request id.")


def register_error_handlers(app) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    app.register_error_handler(StaleDataError, handle_stale_data)
    app.register_error_handler(DataError, handle_data_error)
    app.register_error_handler(OperationalError, handle_operational_error)
    app.register_error_handler(Exception, handle_unexpected)
