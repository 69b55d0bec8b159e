"""The flask-smorest Api, Blueprint and Schema every domain builds on."""

from __future__ import annotations

import contextvars
import decimal
import hashlib
import json
import re
import threading
from collections.abc import Mapping
from datetime import UTC
from functools import wraps
from http import HTTPStatus

import marshmallow as ma
from flask import current_app, request
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest import abort
from flask_smorest.pagination import PaginationMetadataSchema
from flask_smorest.utils import prepare_response
from webargs.fields import DelimitedList
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.datastructures import MultiDict
from werkzeug.http import unquote_etag
from werkzeug.routing import IntegerConverter

from cairn import request_body
from cairn.db import MAX_ID
from cairn.errors import PROBLEM_JSON, handle_http_exception


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details: the body of every error answer, as ``application/problem+json``
    (only ever sent: every field is read only)."""

    class Meta:
        ordered = True
        unknown = ma.INCLUDE  # documented as open: a problem may carry extension members

    type = ma.fields.String(
        required=True, dump_only=True, metadata={"description": "A URI naming the problem; about:blank"}
    )
    title = ma.fields.String(required=True, dump_only=True, metadata={"description": "The status code's phrase"})
    status = ma.fields.Integer(required=True, dump_only=True, metadata={"description": "The HTTP status code"})
    detail = ma.fields.String(required=True, dump_only=True, metadata={"description": "What went wrong, for a person"})
    instance = ma.fields.String(
        dump_only=True, metadata={"description": "urn:request:<the X-Request-ID of the request>"}
    )
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Raw(),
        dump_only=True,
        metadata={"description": "For invalid fields: {field: [messages]} (nested for nested fields)"},
    )


# Response headers, documented once (components) and referred to by name.
PAGINATION_HEADER = {
    "description": (
        "Pagination metadata: a JSON object with total, total_pages, first_page, last_page, page, "
        "previous_page and next_page (the page numbers that exist)."
    ),
    "schema": {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": {"$ref": "#/components/schemas/PaginationMetadata"},
    },
}
ETAG_HEADER = {
    "description": (
        "The version of the object, a strong entity tag. Send it back in If-Match on PATCH or DELETE "
        "(a stale one is 412) or in If-None-Match on GET (unchanged: 304)."
    ),
    "schema": {"type": "string"},
}
_ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"description": 'Bearer realm="cairn"', "schema": {"type": "string"}}},
    405: {"Allow": {"description": "The methods the resource takes", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "string"}}},
}


# No text may carry a NUL character (Schema._reject_nul_characters); an item of a comma-separated
# query list cannot carry a comma either.
NO_NUL = "^[^\\u0000]*$"
NO_NUL_NOR_COMMA = "^[^,\\u0000]*$"


def _text_without_nul(converter, field, ret, **kwargs) -> dict:
    """apispec attribute function: a text field clients send says that it takes no NUL character
    (nor a comma in an item of a comma-separated query list), unless its format, choices or
    pattern already say what it takes."""
    types = ret.get("type")
    if field.dump_only or (types != "string" and not (isinstance(types, list) and "string" in types)):
        return {}
    if any(key in ret for key in ("pattern", "enum", "format", "const")):
        return {}
    if isinstance(getattr(field, "parent", None), DelimitedList):
        return {"pattern": NO_NUL_NOR_COMMA}
    return {"pattern": NO_NUL}


# Any JSON a client may send where a field takes free-form JSON: no NUL character in any text.
JSON_VALUE_REF = {"$ref": "#/components/schemas/JSONValue"}
JSON_VALUE = {
    "description": "Any JSON value; no text in it (nor a key) may carry a NUL character",
    "anyOf": [
        {"type": ["null", "boolean", "number"]},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": JSON_VALUE_REF},
        {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": JSON_VALUE_REF},
    ],
}


def _document_ignored_fields(converter) -> None:
    """A schema that ignores unknown fields (``unknown = EXCLUDE``: a peer's format, such as
    Alertmanager's webhook) still refuses NUL anywhere in the body: the document says so, its unknown
    properties being JSON values without NUL, under names without NUL."""
    from apispec.ext.marshmallow.common import resolve_schema_instance

    plain = converter.schema2jsonschema

    def schema2jsonschema(schema):
        ret = plain(schema)
        if getattr(resolve_schema_instance(schema), "unknown", None) == ma.EXCLUDE:
            ret.setdefault("propertyNames", {"pattern": NO_NUL})
            ret.setdefault("additionalProperties", dict(JSON_VALUE_REF))
        return ret

    converter.schema2jsonschema = schema2jsonschema


def _json_without_nul(converter, field, ret, **kwargs) -> dict:
    """apispec attribute function: free-form JSON a client sends (a Raw field, the values of a Dict
    that declares none) is JSONValue, and an object's keys carry no NUL either."""
    if field.dump_only:
        return {}
    if type(field) is ma.fields.Raw:
        return dict(JSON_VALUE_REF)
    if isinstance(field, ma.fields.Dict):
        # the field's own constraints on its keys (metadata "propertyNames"), and no NUL
        extra = {"propertyNames": {**field.metadata.get("propertyNames", {}), "pattern": NO_NUL}}
        if ret.get("additionalProperties") in ({}, True, None):
            extra["additionalProperties"] = dict(JSON_VALUE_REF)
        return extra
    return {}


_DOCUMENTING = threading.RLock()


class Api(SmorestApi):
    """Speaks problem+json for every HTTP error, including flask-smorest's own, and says so in the
    OpenAPI document: each operation lists the error statuses it can answer (no catch-all
    ``default``), each as ``application/problem+json`` with the Problem schema."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    # The OpenAPI document is filled in when it is first read, not at start: describing ~150
    # operations is a second of every process start (web and job workers, the graph host, each CLI
    # call), and few processes ever serve the document. ``spec`` is the document, complete.
    @property
    def spec(self):
        state = self.__dict__
        if state.get("_undocumented") and not state.get("_documenting"):
            with _DOCUMENTING:  # other threads wait for the whole document
                pending = state.get("_undocumented")
                if pending and not state.get("_documenting"):
                    state["_documenting"] = True  # what documenting reads of this property meanwhile
                    try:
                        for blp, app, name, parameters in pending:
                            blp.register_views_in_doc(self, app, state["_spec"], name=name, parameters=parameters)
                            state["_spec"].tag({"name": name, "description": blp.description})
                        state["_undocumented"] = []
                    finally:
                        state["_documenting"] = False
        return state.get("_spec")

    @spec.setter
    def spec(self, value) -> None:
        self.__dict__["_spec"] = value
        self.__dict__["_undocumented"] = []

    def register_blueprint(self, blp, *, parameters=None, **options):
        """Mount ``blp`` as flask-smorest does; its operations join the document when it is read."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, self._app, name, parameters))

    def init_app(self, app, *args, **kwargs):
        # Before any route is added: every <int:...> of a path is an object id.
        app.url_map.converters["int"] = IdConverter
        super().init_app(app, *args, **kwargs)
        # Bodies are read through the kernel's request class (the size cap holds for chunked
        # bodies too); installed with the Api so that every app serving it has it.
        request_body.install(app)

    def _init_spec(self, *args, **kwargs):
        super()._init_spec(*args, **kwargs)
        self._register_field(DecimalString, "string", "decimal")
        self.ma_plugin.converter.add_attribute_function(_text_without_nul)
        self.ma_plugin.converter.add_attribute_function(_json_without_nul)
        _document_ignored_fields(self.ma_plugin.converter)
        self.spec.components.schema("JSONValue", JSON_VALUE)
        # The X-Pagination header's contentSchema refers to it by name.
        if "PaginationMetadata" not in self.spec.components.schemas:
            self.spec.components.schema("PaginationMetadata", schema=PaginationMetadataSchema)

    def _register_responses(self):
        """A response component per status (referred to by its name, UNPROCESSABLE_ENTITY...): error
        statuses are problem+json."""
        for status in HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                if status in _ERROR_HEADERS:
                    response["headers"] = _ERROR_HEADERS[status]
                prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)

    def _register_etag_headers(self):
        self.spec.components.header("ETAG", ETAG_HEADER, lazy=True)

    def _register_pagination_header(self):
        self.spec.components.header("PAGINATION", PAGINATION_HEADER, lazy=True)

    def _register_doc_blueprint(self):
        super()._register_doc_blueprint()
        # The docs pages' own scripts and styles, served here: the docs work offline.
        from cairn import docs

        docs.install(self._app)

    def handle_http_exception(self, error):
        return handle_http_exception(error)


class IdConverter(IntegerConverter):
    """``<int:...>`` in a route is an object id, 1 to MAX_ID: a path with any other number names no
    object (404, before any view or query runs), and the document publishes the range."""

    def __init__(self, map, fixed_digits=0, min=1, max=MAX_ID, signed=False):  # werkzeug's parameter names
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._schemas: dict[type, ma.Schema] = {}

    def _get_schema(self, argmap, req):
        """One instance per schema class, not one per request (webargs builds a new one for a class:
        the deep copy of its fields was a tenth of a list request). Loading keeps no state on it."""
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            if argmap not in self._schemas:
                self._schemas[argmap] = argmap()
            return self._schemas[argmap]
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req):
        if not is_json_request(req):
            return ma.missing
        return request_body.json_body(req)

    def load_querystring(self, req, schema):
        """The query string, with the text of a whole number in decimal or exponent notation
        ("3.0", "1e+16") read as that integer where the schema takes an integer: the document's
        ``type: integer`` is JSON Schema's, for which 3.0 is the integer 3."""
        args, fixed = req.args, {}
        for name, field in schema.fields.items():
            key = field.data_key or name
            if key not in args:
                continue
            values = args.getlist(key)
            if isinstance(field, ma.fields.Integer):
                typed = [_whole_number_text(value) for value in values]
            elif isinstance(field, DelimitedList) and isinstance(field.inner, ma.fields.Integer):
                typed = [
                    field.delimiter.join(_whole_number_text(v) for v in value.split(field.delimiter))
                    for value in values
                ]
            else:
                continue
            if typed != values:
                fixed[key] = typed
        if fixed:
            args = MultiDict(args)
            for key, values in fixed.items():
                args.setlist(key, values)
        return self._makeproxy(args, schema)

    # The schema's own setting (the kernel's: RAISE) for a multipart body, not webargs' EXCLUDE.
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "files": None}

    def load_files(self, req, schema):
        """The uploaded files and, so that a schema that takes none is told of them (unknown fields
        are 422), the multipart body's other fields."""
        parts = MultiDict(req.files)
        for key, values in req.form.lists():
            parts.setlist(key, values)
        return self._makeproxy(parts, schema)

    def parse(self, argmap, req=None, *, location=None, **kwargs):
        # The kernel Schema reads JSON values by JSON's types (see Schema._json_types), query
        # strings as text: it needs to know which one it is loading.
        token = _LOADING_JSON.set((location or self.location) == "json")
        try:
            return super().parse(argmap, req, location=location, **kwargs)
        finally:
            _LOADING_JSON.reset(token)

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
        prefixes = _open_prefixes.get((req.endpoint or "", req.method), ())
        unknown = sorted(name for name in set(req.args) - accepted if not (prefixes and name.startswith(prefixes)))
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
# Query parameter prefixes a view's query schema validates itself (``OPEN_QUERY_PREFIXES``: cf_<name>).
_open_prefixes: dict[tuple[str, str], tuple[str, ...]] = {}


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
            _open_prefixes[key] = (*_open_prefixes.get(key, ()), *getattr(schema, "OPEN_QUERY_PREFIXES", ()))
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
        self._prepare_doc_cbks.append(_document_kernel_answers)
        self._adding_rule: str | None = None

    @staticmethod
    def _make_pagination_metadata(page, page_size, item_count):
        """flask-smorest's X-Pagination content (the PaginationMetadata component), without building
        a schema to dump a handful of integers on every list request."""
        if item_count == 0:
            return {"total": 0, "total_pages": 0}
        last = (item_count - 1) // page_size + 1
        metadata = {"total": item_count, "total_pages": last, "first_page": 1, "last_page": last}
        if page <= last:
            metadata["page"] = page
            if page > 1:
                metadata["previous_page"] = page - 1
            if page < last:
                metadata["next_page"] = page + 1
        return metadata

    def pagination_header_value(self, page: int, page_size: int, total: int) -> str:
        """The X-Pagination header's value (JSON) for ``page`` of ``page_size`` items out of ``total``,
        for a view that pages an answer itself (without ``@blp.paginate``); set it under
        ``PAGINATION_HEADER_NAME``."""
        return json.dumps(self._make_pagination_metadata(page, page_size, total))

    def add_url_rule(self, rule, *args, **kwargs):
        self._adding_rule = rule
        try:
            super().add_url_rule(rule, *args, **kwargs)
        finally:
            self._adding_rule = None

    def _store_endpoint_docs(self, endpoint, obj, parameters, tags, **options):
        """Also keep, for the document, each method's view function and the URL rule: what the
        kernel answers around a view depends on them (who may call it, whether it names an id)."""
        super()._store_endpoint_docs(endpoint, obj, parameters, tags, **options)
        for method, doc in self._docs[endpoint].items():
            if method == "parameters":
                continue
            handler = getattr(obj, method, None) if isinstance(obj, type) else obj
            doc[_KERNEL_DOC] = {"view": handler, "rule": self._adding_rule or ""}

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


_KERNEL_DOC = "_cairn_kernel"
_BODY_METHODS = frozenset({"post", "put", "patch"})
_WRITE_METHODS = _BODY_METHODS | {"delete"}


def _document_kernel_answers(doc, doc_info, *, method, **kwargs):
    """What the kernel answers around every view, in the operation's document: the error statuses
    it can return (see ``kernel_error_statuses``), the X-Pagination header of paginated lists (set
    by flask-smorest's own callback, pointing at the PAGINATION component), and the ETag header (and
    the 304 of a conditional GET) of answers that are one stored object (``with_etag``: a schema
    with an id and updated_at)."""
    info = doc_info.get(_KERNEL_DOC) or {}
    responses = doc.setdefault("responses", {})
    present = {str(code) for code in responses}
    single_object = False
    for code, response in responses.items():
        if not (isinstance(response, dict) and str(code) in ("200", "201") and method in ("get", *_BODY_METHODS)):
            continue
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if isinstance(schema, type):
            schema = schema()
        if isinstance(schema, ma.Schema) and not schema.many and {"id", "updated_at"} <= set(schema.fields):
            response.setdefault("headers", {})["ETag"] = "ETAG"
            single_object = True
    _document_raw_body(doc, info.get("view"))
    statuses = kernel_error_statuses(method, info.get("view"), info.get("rule", ""), doc_info)
    if method == "get" and single_object:
        statuses.add(304)
    for status in sorted(statuses):
        if str(status) not in present:
            responses[status] = HTTPStatus(status).name
    return doc


def _document_raw_body(doc, view) -> None:
    """A view that takes a raw body (``cairn.http.accepts``: CSV, a mail message) and parses no
    JSON: the body it needs, some text of the declared type (an empty one is 422)."""
    from cairn.http import ACCEPTS_ATTR

    accepted = getattr(view, ACCEPTS_ATTR, None)
    if not accepted or "requestBody" in doc:
        return
    doc["requestBody"] = {
        "required": True,
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary", "minLength": 1, "description": "not blank"}}
            for media_type in sorted(accepted)
            if media_type  # "": a body sent without a Content-Type is taken, but is no media type
        },
    }


def kernel_error_statuses(method: str, view, rule: str, doc_info: dict) -> set[int]:
    """The error statuses the kernel itself may answer for a view, whatever the view does:

    - 401 and 403 unless the view is public (no or a bad token; a role or scope that may not);
    - 404 when the path or the query names an id (unknown, or past the database range);
    - 422 always (unknown query parameters; invalid fields);
    - 400, 413 and 415 on POST, PUT and PATCH (a body that is not JSON the service reads, too
      large, or of a type the view does not take);
    - 409 and 412 on every write (a duplicate or a reference that vanished meanwhile; an If-Match
      that is stale, or a concurrent update of the same object);
    - 503 always (the database is unavailable or busy).

    What a view answers beyond these it declares with ``@blp.alt_response``."""
    from cairn.auth.guard import PUBLIC, ROLES_ATTR

    statuses = {422, 503}
    if getattr(view, ROLES_ATTR, None) != PUBLIC:
        statuses |= {401, 403}
    if "<" in rule or _names_an_id(doc_info):
        statuses.add(404)
    if method in _BODY_METHODS:
        statuses |= {400, 413, 415}
    if method in _WRITE_METHODS:
        statuses |= {409, 412}
    return statuses


def _names_an_id(doc_info: dict) -> bool:
    for parameter in doc_info.get("arguments", {}).get("parameters", []):
        if parameter.get("in") not in _QUERY_LOCATIONS:
            continue
        schema = parameter["schema"]
        schema = schema() if isinstance(schema, type) else schema
        if any(_id_in_range in field.validators for field in schema.load_fields.values()):
            return True
    return False


_WHOLE_NUMBER_TEXT = re.compile(r"[+-]?[0-9]{1,30}(\.0*)?([eE]\+?[0-9]{1,2})?")


def _whole_number_text(text: str) -> str:
    if ("." in text or "e" in text.lower()) and _WHOLE_NUMBER_TEXT.fullmatch(text):
        return str(int(decimal.Decimal(text)))
    return text


_LOADING_JSON: contextvars.ContextVar[bool] = contextvars.ContextVar("cairn_loading_json", default=False)
# Whole floats past this are not exactly an integer any more.
_EXACT_FLOAT = 2**53


class Schema(ma.Schema):
    """Unknown fields are an error, never silently dropped; no string may carry a NUL character
    (PostgreSQL cannot store one, and no legitimate client sends one). A JSON body is read by JSON's
    types, as the OpenAPI document (JSON Schema) describes them: a boolean is true or false (not 0,
    nor "yes"), an integer a number without a fraction (3 or 3.0, not "3" nor 3.5), a number a
    number (not "3.5")."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    @ma.pre_load(pass_collection=True)
    def _json_types(self, data, many=False, **kwargs):
        if not _LOADING_JSON.get():
            return data
        if many and isinstance(data, list):
            return [self._json_typed_object(item) for item in data]
        return self._json_typed_object(data)

    def _json_typed_object(self, data):
        if not isinstance(data, dict):
            return data
        typed, errors = dict(data), {}
        for name, field in self.load_fields.items():
            key = field.data_key or name
            if key in typed:
                try:
                    typed[key] = _json_typed(field, typed[key])
                except ma.ValidationError as exc:
                    errors[key] = exc.messages
        if errors:
            raise ma.ValidationError(errors)
        return typed

    @ma.pre_load(pass_collection=True)
    def _reject_nul_characters(self, data, **kwargs):
        if isinstance(data, Mapping):  # a JSON object, or the query string (webargs' MultiDictProxy)
            bad = sorted(
                str(key).replace("\x00", "\\0") for key, value in data.items() if _has_nul(key) or _has_nul(value)
            )
            if bad:
                raise ma.ValidationError({key: ["Text may not contain NUL characters."] for key in bad})
        elif _has_nul(data):
            raise ma.ValidationError(["Text may not contain NUL characters."])
        return data


def _json_typed(field: ma.fields.Field, value):
    """``value`` as JSON typed it, for ``field``: whole floats are integers; a string, a boolean or a
    fraction where the field takes a number or a boolean is refused with the field's own message."""
    if value is None:
        return value
    if isinstance(field, ma.fields.List) and isinstance(value, list) and field.inner is not None:
        typed, errors = [], {}
        for index, item in enumerate(value):
            try:
                typed.append(_json_typed(field.inner, item))
            except ma.ValidationError as exc:
                errors[index] = exc.messages
        if errors:
            raise ma.ValidationError(errors)
        return typed
    if isinstance(field, ma.fields.Integer):
        if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_FLOAT:
            return int(value)
        wrong = isinstance(value, (str, bool, float))
    elif isinstance(field, ma.fields.Boolean):
        wrong = not isinstance(value, bool)
    elif isinstance(field, ma.fields.Number) and not isinstance(field, DecimalString):
        wrong = isinstance(value, (str, bool))
    else:
        wrong = False
    if wrong:
        raise ma.ValidationError(field.error_messages["invalid"])
    return value


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
    """An object id. JSON bodies must send a number (strict: not "3"; 3.0 is the number 3, as JSON
    and JSON Schema read it); query strings send text. An id past the database range is NoSuchId:
    404 in a path or query, 422 in a body. The document publishes the range (minimum 1, maximum
    MAX_ID)."""
    invalid = (
        'Not a valid id: send a whole number such as 3 (not "3", nor 3.5).'
        if strict
        else "Not a valid id: a whole number such as 3."
    )
    kwargs["error_messages"] = {"invalid": invalid, **kwargs.get("error_messages", {})}
    kwargs["metadata"] = {"maximum": MAX_ID, **kwargs.get("metadata", {})}
    return ma.fields.Integer(strict=strict, validate=[ma.validate.Range(min=1), _id_in_range], **kwargs)


def QueryId(**kwargs) -> ma.fields.Integer:
    return Id(strict=False, **kwargs)


class FullMatch(ma.validate.Regexp):
    """A pattern the whole text must match, published as the field's ``pattern``. Python's ``$``
    also matches before a final newline and ECMA's (JSON Schema's) does not: the whole-string match
    makes both read the pattern the same way."""

    def __init__(self, pattern: str, error: str | None = None):
        super().__init__(pattern, error=error or "Not in the expected form.")

    def __call__(self, value):
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


def Text(max_length: int = 255, *, min_length: int = 0, validate=None, **kwargs) -> ma.fields.String:
    validators = [ma.validate.Length(min=min_length, max=max_length)]
    if validate is not None:
        validators.extend(validate if isinstance(validate, (list, tuple)) else [validate])
    return ma.fields.String(validate=validators, **kwargs)


class UtcDateTime(ma.fields.AwareDateTime):
    """An ISO 8601 date and time with its offset (UTC when it has none), refused when it has no UTC
    equivalent (``9999-12-31T23:59:59-23:59`` is past the year 9999 in UTC): the database keeps UTC."""

    default_error_messages = {"out_of_range": "Out of range once in UTC."}

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise self.make_error("out_of_range") from None
        return moment


def When(**kwargs) -> UtcDateTime:
    """A date and time the client sends (see ``UtcDateTime``)."""
    return UtcDateTime(default_timezone=UTC, **kwargs)


# An http(s) address: a host name or IPv4 address (no IPv6 literal), an optional port, then
# printable ASCII.
WEB_ADDRESS = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?$"


class DecimalString(ma.fields.Decimal):
    """A decimal number that travels as a JSON string (``"12000.00"``), never as a JSON number
    (binary floating point loses cents). Documented as ``type: string``, ``format: decimal`` and the
    ``pattern`` it must match; the pattern is the whole contract of what is accepted (it also bounds
    the range, so ``minimum``/``maximum``, numbers in JSON Schema, are not published for text). Sent
    with ``places`` decimals."""

    default_error_messages = {
        "not_text": 'Send the amount as a decimal string such as "12000.00", not as a number.',
        "pattern": "Not a decimal in range: {description}.",
    }

    def __init__(self, *, pattern: str, description: str, minimum, maximum, places: int = 2, **kwargs):
        metadata = {"pattern": pattern, "description": description, **kwargs.pop("metadata", {})}
        super().__init__(places=places, as_string=True, metadata=metadata, **kwargs)
        self.regex = re.compile(pattern)
        self.minimum, self.maximum = decimal.Decimal(minimum), decimal.Decimal(maximum)
        self.range_description = description

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("not_text")
        if not self.regex.fullmatch(value):
            raise self.make_error("pattern", description=self.range_description)
        number = super()._deserialize(value, attr, data, **kwargs)
        if not self.minimum <= number <= self.maximum:
            raise self.make_error("pattern", description=self.range_description)
        return number


# At most 12 digits before the point and 2 after (NUMERIC(14, 2)): 0 to 999999999999.99.
MONEY_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"


def Money(**kwargs) -> DecimalString:
    """An amount: a decimal string from "0" to "999999999999.99", at most 2 decimals; sent as "12.50"."""
    return DecimalString(
        pattern=MONEY_PATTERN,
        description=kwargs.pop("description", "an amount, 0 to 999999999999.99, at most 2 decimals"),
        minimum=0,
        maximum=decimal.Decimal("999999999999.99"),
        **kwargs,
    )


def Total(**kwargs) -> DecimalString:
    """A computed sum of amounts (read only): a decimal string with 2 decimals, not capped as a stored
    amount is."""
    return DecimalString(
        pattern=r"^[0-9]+\.[0-9]{2}$",
        description=kwargs.pop("description", "an amount, with 2 decimals"),
        minimum=0,
        maximum=decimal.Decimal("1e30"),
        dump_only=True,
        **kwargs,
    )


def OneOf(choices, **kwargs) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.OneOf(list(choices)), **kwargs)


def etag_of(obj) -> str:
    """A strong ETag that changes whenever the row's version counter moves."""
    raw = f"{obj.__tablename__}:{obj.id}:{getattr(obj, 'version', 0)}"
    return '"' + hashlib.sha1(raw.encode()).hexdigest()[:20] + '"'


def check_if_match(obj) -> None:
    """Honour If-Match on writes when the client sends it: a stale one is 412. RFC 9110 13.1.1: the
    strong comparison, so a weak tag (``W/"x"``) never matches; ``*`` matches the existing object."""
    if not request.headers.get("If-Match"):
        return
    wanted = request.if_match
    if wanted.star_tag:
        return
    current, _weak = unquote_etag(etag_of(obj))
    if not wanted.is_strong(current):
        abort(412, message="If-Match does not match the current version of the object (weak tags never do).")


def with_etag(obj, status: int | None = None):
    """Return value for a view: the object, and its ETag header."""
    headers = {"ETag": etag_of(obj)}
    return (obj, status, headers) if status else (obj, headers)


# ---------------------------------------------------------------------------------------------
# Bulk edit: PATCH of a list (PATCH /cis, PATCH /tickets)

MAX_BULK_EDIT = 1000


class BulkEditSchema(Schema):
    """``{ids: [...] | filter: {...}, set: {...}, dry_run}``: the objects by id, or those the list's
    filter (its query parameters) matches, at most MAX_BULK_EDIT of them; each list declares ``set``
    with its own PATCH schema."""

    ids = ma.fields.List(
        Id(), validate=ma.validate.Length(min=1, max=MAX_BULK_EDIT), metadata={"description": "each id once"}
    )
    filter = ma.fields.Dict(
        keys=Text(60),
        values=Text(2000),
        validate=ma.validate.Length(max=30),
        metadata={"description": 'the list\'s query parameters, e.g. {"ci_class": "laptop", "status": "in_stock"}'},
    )
    dry_run = ma.fields.Boolean(load_default=False, metadata={"description": "answer the same, write nothing"})

    @ma.validates_schema
    def _one_target(self, data, **kwargs):
        if ("ids" in data) == ("filter" in data):
            raise ma.ValidationError("Give ids or filter (one of them).", "_schema")
        if "ids" in data and len(set(data["ids"])) != len(data["ids"]):
            raise ma.ValidationError("An id is given twice.", "ids")


class BulkEditResultSchema(Schema):
    index = ma.fields.Integer(metadata={"description": "the position in ids, or in the filter's matches by id"})
    id = ma.fields.Integer()
    status = OneOf(("updated", "unchanged", "error"))
    errors = ma.fields.Dict(allow_none=True)
    detail = ma.fields.String(allow_none=True)
