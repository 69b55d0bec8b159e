"""Reading request bodies: the size cap on the bytes read whatever the framing, and JSON parsed
with limits, so that nothing a client sends reaches a view half-read or as a Python error.

Size: ``request.max_content_length`` (``CAIRN_MAX_REQUEST_BYTES``, or what a view sets before it
reads, as the inbound-email view does) is enforced on the bytes actually read. Werkzeug checks a
``Content-Length`` up front, but a chunked body (no Content-Length; the server sets
``wsgi.input_terminated``) is only wrapped in a stream that *stops* at the cap: ``read()`` returns
the first ``cap`` bytes as if they were the whole body, so an 11 MB upload was silently imported as
its first 10 MB. ``CairnRequest.stream`` reads on past the cap by one byte instead: if there is one,
the request is answered 413 and nothing of it is used.

JSON: UTF-8 only, no NaN/Infinity (not JSON), integers of at most ``MAX_INT_DIGITS`` digits,
nesting at most ``MAX_DEPTH`` deep, and no lone UTF-16 surrogate (``"\\udfff"`` decodes to a Python
string no encoder or database driver accepts). Each is a 400 problem naming what is wrong.
"""

from __future__ import annotations

import json
import re
from typing import IO

from flask import Request
from flask_smorest import abort
from marshmallow.utils import missing
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream

MAX_DEPTH = 64
# No field takes an integer past 64 bits (20 digits); 100 leaves room for any sane client and keeps
# clear of Python's own limit (4,300 digits, a ValueError) and its quadratic parsing.
MAX_INT_DIGITS = 100
_CACHE_ATTR = "_cairn_json_body"
# A lone surrogate can only come from a \\uD800-\\uDFFF escape (strict UTF-8 decoding refuses the
# bytes): bodies without such an escape skip the search of their strings.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _CappedStream(LimitedStream):
    """A body stream that refuses, rather than cuts, a body longer than ``limit``: on reaching the
    limit it reads one byte more, and raises 413 when there is one."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        super().__init__(stream, limit, is_max=True)
        self._source = stream

    def on_exhausted(self) -> None:
        if self._source.read(1):
            raise RequestEntityTooLarge()

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted:
            self.on_exhausted()
        return data


class CairnRequest(Request):
    """Flask's request, with a body stream that never hands a view a truncated body."""

    @cached_property
    def stream(self) -> IO[bytes]:
        if self.shallow:
            raise RuntimeError("This request was created with 'shallow=True'; its body cannot be read.")
        limit = self.max_content_length
        if limit is not None and "wsgi.input_terminated" in self.environ:
            if self.content_length is not None and self.content_length > limit:
                raise RequestEntityTooLarge()
            return _CappedStream(self.environ["wsgi.input"], limit)
        # Without a cap, or with a server that does not terminate the stream (then only a
        # Content-Length body is read at all), Werkzeug's stream is exact.
        return get_input_stream(self.environ, max_content_length=limit)


def install(app) -> None:
    """Make every request of ``app`` a CairnRequest."""
    if app.request_class is Request:
        app.request_class = CairnRequest
    elif not issubclass(app.request_class, CairnRequest):
        app.request_class = type("CairnAppRequest", (CairnRequest, app.request_class), {})


# ---------------------------------------------------------------------------------------------
# JSON


class _Refused(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text) - (text[0] == "-") > MAX_INT_DIGITS:
        raise _Refused(f"A number in the JSON has more than {MAX_INT_DIGITS} digits.")
    return int(text)


def _parse_constant(name: str):
    raise _Refused(f"{name} is not a JSON value; send a number or null.")


def _check_structure(value, look_for_surrogates: bool) -> None:
    """Iteratively (a deep body must not exhaust the stack here either): depth and lone surrogates."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
            if look_for_surrogates:
                for key in item:
                    _check_text(key)
        elif isinstance(item, list):
            children = item
        else:
            if look_for_surrogates and isinstance(item, str):
                _check_text(item)
            continue
        if depth > MAX_DEPTH:
            raise _Refused(f"The JSON nests deeper than {MAX_DEPTH} levels.")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, str)))


def _check_text(text: str) -> None:
    found = _SURROGATE.search(text)
    if found:
        raise _Refused(
            f"Text in the JSON holds a lone surrogate (\\u{ord(found.group()):04x}), which is not a "
            "character; send the character itself, or a complete surrogate pair."
        )


def loads(text: str):
    """``json.loads`` with the kernel's limits (for any JSON a client hands over: request bodies, CSV
    cells). Raises ValueError with a message fit for the client."""
    try:
        value = json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant)
    except _Refused:
        raise
    except json.JSONDecodeError as exc:
        raise _Refused(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
    except RecursionError:
        raise _Refused(f"The JSON nests deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:  # Python's own integer limit, should MAX_INT_DIGITS be raised past it
        raise _Refused(f"The JSON holds a value Python cannot read: {exc}.") from None
    _check_structure(value, look_for_surrogates=_SURROGATE_ESCAPE.search(text) is not None)
    return value


def parse_json(data: bytes):
    """The JSON value of a request body; ``missing`` when it is empty. Raises ValueError with a
    message fit for the client when the body is not JSON the service can take."""
    if not data.strip():
        return missing
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused(f"The body is not UTF-8 (byte {exc.start}).") from None
    return loads(text)


def json_body(request: Request):
    """The request's JSON body, parsed once (``missing`` when empty); a body that can't be taken is
    a 400 problem, one that is too large a 413."""
    if hasattr(request, _CACHE_ATTR):
        return getattr(request, _CACHE_ATTR)
    try:
        value = parse_json(request.get_data(cache=True))
    except _Refused as exc:
        abort(400, message=str(exc))
    setattr(request, _CACHE_ATTR, value)
    return value


def has_body(request: Request) -> bool:
    """Whether the request carries a body with anything but whitespace in it (reads it, cached)."""
    return bool(request.get_data(cache=True).strip())
