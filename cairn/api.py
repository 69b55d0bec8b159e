"""The flask-smorest Api, Blueprint and Schema every domain builds on."""

from __future__ import annotations

import hashlib

import marshmallow as ma
from flask import request
from flask_smorest import Api as SmorestApi
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest import abort

from cairn.db import MAX_ID
from cairn.errors import handle_http_exception


class Api(SmorestApi):
    """Speaks problem+json for every HTTP error, including flask-smorest's own."""

    def handle_http_exception(self, error):
        return handle_http_exception(error)


class Blueprint(SmorestBlueprint):
    """Pagination defaults of API.md: page from 1, page_size 50 by default, at most 1000."""

    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": 50, "max_page_size": 1000}


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
def Id(*, strict: bool = True, **kwargs) -> ma.fields.Integer:
    """An object id. JSON bodies must send a number (strict); query strings send text."""
    return ma.fields.Integer(strict=strict, validate=ma.validate.Range(min=1, max=MAX_ID), **kwargs)


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
