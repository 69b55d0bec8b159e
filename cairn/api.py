"""The flask-smorest Api, Blueprint and Schema every domain builds on."""

from __future__ import annotations

import hashlib
from functools import wraps

import marshmallow as ma
from flask import current_app, request
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest import abort
from webargs.flaskparser import FlaskParser, is_json_request

from cairn import request_body
from cairn.db import MAX_ID
from cairn.errors import handle_http_exception


class Api(SmorestApi):
    """Speaks problem+json for every HTTP error, including flask-smorest's own."""

    def init_app(self, app, *args, **kwargs):
        super().init_app(app, *args, **kwargs)
        # Bodies are read through the kernel's request class (the size cap holds for chunked
        # bodies too); installed with the Api so that every app serving it has it.
        request_body.install(app)

    def _register_doc_blueprint(self):
        super()._register_doc_blueprint()
        # The docs pages' own scripts and styles, served here: the docs work offline.
        from cairn import docs

        docs.install(self._app)

    def handle_http_exception(self, error):
        return handle_http_exception(error)


class NoSuchId(str):
    """The message of an id past the database range: no object can have it.

    Where the id says which object the request is about (the path, a query parameter) and nothing
    else is wrong, the answer is 404, as for any id of nothing. In a body the id refers to another
    object, and a reference to nothing is a 422 naming the field (as the services answer for an
    unknown id in range)."""

    def __new__(cls, value: int):
        shown = str(value) if len(str(value)) <= 40 else str(value)[:20] + "…"
        message = super().__new__(cls, f"Nothing has id {shown}: ids go up to {MAX_ID}.")
        message.shown = shown
        return message


def _leaves(messages, path=()):
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(messages, (list, tuple)):
        for value in messages:
            yield from _leaves(value, path)
    else:
        yield path, messages


_NOT_FOUND_LOCATIONS = {"query", "querystring", "view_args", "path"}


class Parser(FlaskParser):
    """webargs' parser with the kernel's JSON reading (limits, once per request), ids past the
    database range in the path or query answered 404, and unknown query parameters answered 422
    naming them, as unknown body fields are (a misspelt filter must not silently return everything)."""

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return ma.missing
        return request_body.json_body(req)

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        leaves = list(_leaves(error.messages))
        if leaves and all(isinstance(m, NoSuchId) and p[:1] and p[0] in _NOT_FOUND_LOCATIONS for p, m in leaves):
            path, message = leaves[0]
            field = str(path[1]) if len(path) > 1 else "id"
            abort(404, message=f"No object has id {message.shown} ({field}).", messages=error.messages)
        super().handle_error(error, req, schema, error_status_code=error_status_code, error_headers=error_headers)

    def reject_unknown_query(self, req) -> None:
        """422 naming every query parameter the view behind ``req`` does not declare. Run before the
        view (``Blueprint`` installs it), so views that parse no query string are covered too."""
        if not req.args:
            return
        accepted = declared_query_parameters(req.endpoint, req.method)
        if accepted is None:
            return
        unknown = sorted(set(req.args) - accepted)
        if not unknown:
            return
        takes = ", ".join(sorted(accepted)) or "no query parameters"
        shown = [_shorten(name) for name in unknown[:20]]
        abort(
            422,
            message=f"Unknown query parameter{'s' if len(unknown) > 1 else ''}: {', '.join(shown)}.",
            errors={name: [f"{UNKNOWN_QUERY_PARAMETER}; this endpoint takes: {takes}."] for name in shown},
        )


UNKNOWN_QUERY_PARAMETER = "Unknown query parameter"
_QUERY_LOCATIONS = ("query", "querystring")
_declared: dict[tuple[str, str], frozenset[str] | None] = {}


def _shorten(name: str) -> str:
    return name if len(name) <= 40 else name[:40] + "…"


def declared_query_parameters(endpoint: str | None, method: str) -> frozenset[str] | None:
    """The query parameters the view method behind ``endpoint`` declares: the fields of its query
    schemas (by the name a client sends) and ``page``/``page_size`` when it is paginated. None when
    it is no view of a kernel Blueprint, or one of its query schemas takes any (``unknown =
    INCLUDE``: it validates the rest itself, as a report's own parameters are)."""
    key = (endpoint or "", method)
    if key in _declared:
        return _declared[key]
    view = current_app.view_functions.get(endpoint) if endpoint else None
    view_class = getattr(view, "view_class", None)
    name = "get" if method in ("GET", "HEAD") else method.lower()
    handler = getattr(view_class, name, None) if view_class is not None else view
    doc = getattr(handler, "_apidoc", None)
    names: set[str] | None = None
    if handler is not None and doc is not None:
        names = set()
        schemas = [p["schema"] for p in doc.get("arguments", {}).get("parameters", []) if p["in"] in _QUERY_LOCATIONS]
        if "pagination" in doc:
            schemas.append(doc["pagination"]["parameters"]["schema"])
        for schema in schemas:
            schema = schema() if isinstance(schema, type) else schema
            if schema.unknown == ma.INCLUDE:
                names = None
                break
            names |= {field.data_key or field_name for field_name, field in schema.load_fields.items()}
    _declared[key] = None if names is None else frozenset(names)
    return _declared[key]


class Blueprint(SmorestBlueprint):
    """Pagination defaults of API.md: page from 1, page_size 50 by default, at most 1000. A JSON
    body declared required (flask-smorest's default) must be sent: none at all is 422."""

    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": 50, "max_page_size": 1000}
    ARGUMENTS_PARSER = Parser()
    PAGINATION_ARGUMENTS_PARSER = Parser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Every view of every domain: unknown query parameters are 422 before the view runs.
        self.before_request(lambda: self.ARGUMENTS_PARSER.reject_unknown_query(request))

    def arguments(self, schema, *, location="json", required=True, **kwargs):
        decorate = super().arguments(schema, location=location, required=required, **kwargs)
        if location != "json" or not required:
            return decorate

        def decorator(func):
            parsed = decorate(func)

            @wraps(parsed)
            def needs_body(*args, **kw):
                if not request_body.has_body(request):
                    abort(422, message="This request needs a JSON body; none was sent.")
                return parsed(*args, **kw)

            return needs_body

        return decorator


class Schema(ma.Schema):
    """Unknown fields are an error, never silently dropped; no string may carry a NUL character
    (PostgreSQL cannot store one, and no legitimate client sends one)."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    @ma.pre_load(pass_collection=True)
    def _reject_nul_characters(self, data, **kwargs):
        if isinstance(data, dict):
            bad = sorted(
                str(key).replace("\x00", "\\0") for key, value in data.items() if _has_nul(key) or _has_nul(value)
            )
            if bad:
                raise ma.ValidationError({key: ["Text may not contain NUL characters."] for key in bad})
        elif _has_nul(data):
            raise ma.ValidationError(["Text may not contain NUL characters."])
        return data


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


# Field helpers: every string is bounded, every id fits the database, every number has a range.
def _id_in_range(value: int) -> None:
    if value > MAX_ID:
        raise ma.ValidationError(NoSuchId(value))


def Id(*, strict: bool = True, **kwargs) -> ma.fields.Integer:
    """An object id. JSON bodies must send a number (strict: not 3.0, not "3"); query strings send
    text. An id past the database range is NoSuchId: 404 in a path or query, 422 in a body."""
    invalid = (
        'Not a valid id: send a whole number such as 3 (not 3.0, nor "3").'
        if strict
        else "Not a valid id: a whole number such as 3."
    )
    kwargs["error_messages"] = {"invalid": invalid, **kwargs.get("error_messages", {})}
    return ma.fields.Integer(strict=strict, validate=[ma.validate.Range(min=1), _id_in_range], **kwargs)


def QueryId(**kwargs) -> ma.fields.Integer:
    return Id(strict=False, **kwargs)


def Text(max_length: int = 255, *, min_length: int = 0, **kwargs) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.Length(min=min_length, max=max_length), **kwargs)


def Money(**kwargs) -> ma.fields.Decimal:
    return ma.fields.Decimal(
        places=2,
        as_string=True,
        validate=ma.validate.Range(min=0, max=10**12 - 1),
        **kwargs,
    )


def OneOf(choices, **kwargs) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.OneOf(list(choices)), **kwargs)


def etag_of(obj) -> str:
    """A strong ETag that changes whenever the row's version counter moves."""
    raw = f"{obj.__tablename__}:{obj.id}:{getattr(obj, 'version', 0)}"
    return '"' + hashlib.sha1(raw.encode()).hexdigest()[:20] + '"'


def check_if_match(obj) -> None:
    """Honour If-Match on writes when the client sends it: a stale one is 412."""
    header = request.headers.get("If-Match")
    if not header:
        return
    wanted = {tag.strip() for tag in header.split(",")}
    if "*" in wanted:
        return
    current = etag_of(obj)
    if current not in wanted and f"W/{current}" not in wanted:
        abort(412, message="If-Match does not match the current version of the object.")


def with_etag(obj, status: int | None = None):
    """Return value for a view: the object, and its ETag header."""
    headers = {"ETag": etag_of(obj)}
    return (obj, status, headers) if status else (obj, headers)
