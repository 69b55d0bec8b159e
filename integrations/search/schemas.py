import marshmallow as ma
from webargs.fields import DelimitedList

from cairn.api import FullMatch, OneOf, Schema
from integrations.search.services import (
    COUNT_CAP,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_QUERY_LENGTH,
    MIN_QUERY_LENGTH,
    TOO_LONG,
    TOO_SHORT,
    TYPES,
    WHITE_SPACE,
)


class _QueryLength(ma.validate.Length):
    """2 to 200 characters, with a message that says which end was missed."""

    def __call__(self, value):
        if len(value) > MAX_QUERY_LENGTH:
            raise ma.ValidationError(TOO_LONG)
        if len(value) < MIN_QUERY_LENGTH:
            raise ma.ValidationError(TOO_SHORT)
        return value


# Two characters or more besides the white space around them (and no NUL character).
_SPACE = "[" + WHITE_SPACE.encode("unicode_escape").decode() + "]"
_NOT_SPACE = "[^" + WHITE_SPACE.encode("unicode_escape").decode() + "\\u0000]"
QUERY_PATTERN = f"^{_SPACE}*{_NOT_SPACE}[^\\u0000]*{_NOT_SPACE}{_SPACE}*$"


class SearchQuerySchema(Schema):
    q = ma.fields.String(
        required=True,
        validate=[_QueryLength(min=MIN_QUERY_LENGTH, max=MAX_QUERY_LENGTH), FullMatch(QUERY_PATTERN, TOO_SHORT)],
        metadata={
            "description": (
                "What to find, 2 to 200 characters. Split at spaces into terms; an object matches when "
                "every term is in what is searched of it, case-insensitively (a term of 3 characters or "
                "more anywhere, a shorter one at the start of a word)."
            )
        },
    )
    types = DelimitedList(
        OneOf(TYPES),
        validate=ma.validate.Length(min=1, max=len(TYPES)),
        metadata={
            "description": "comma-separated types wanted, in the order wanted; default all: ci,ticket,user,team,"
            "article (knowledge articles the caller may read)"
        },
    )
    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=ma.validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"items per group, 1 to {MAX_LIMIT}"},
    )


# The answer (every field always present; ``exact`` may be null).


class SearchItemSchema(Schema):
    type = OneOf(TYPES, dump_only=True, required=True, metadata={"description": "ci, ticket, user, team or article"})
    id = ma.fields.Integer(
        dump_only=True, required=True, metadata={"description": "the object's id (GET /cis/{id}, ...)"}
    )
    title = ma.fields.String(
        dump_only=True,
        required=True,
        metadata={"description": 'what to show: the CI name, "INC0000012 title", the user or team name'},
    )
    subtitle = ma.fields.String(
        dump_only=True,
        required=True,
        metadata={
            "description": (
                "one short line: a CI's class, status and asset tag; a ticket's kind and state; a user's "
                "e-mail and role; a team's e-mail"
            )
        },
    )
    url = ma.fields.String(
        dump_only=True,
        required=True,
        metadata={
            "description": "where a person opens it: the web desk's page of a CI or ticket (/cis/{id}, "
            "/tickets/{id}), the API's resource of a user or team"
        },
    )
    score = ma.fields.Float(
        dump_only=True,
        required=True,
        metadata={
            "description": (
                "the rank, highest first: 4 and up the exact asset tag or ticket number, 3 a field equal to "
                "the query, 2 a field starting with it, 1 any other match; the fraction orders within a tier"
            )
        },
    )


class SearchGroupSchema(Schema):
    type = OneOf(TYPES, dump_only=True, required=True, metadata={"description": "a type asked for"})
    total = ma.fields.Integer(
        dump_only=True,
        required=True,
        metadata={"description": f"how many objects of the type match, counted up to {COUNT_CAP} (see more)"},
    )
    more = ma.fields.Boolean(
        dump_only=True,
        required=True,
        metadata={"description": f"true when more than {COUNT_CAP} match (total is then {COUNT_CAP})"},
    )


class SearchExactSchema(Schema):
    type = OneOf(("ci", "ticket"), dump_only=True, required=True)
    id = ma.fields.Integer(dump_only=True, required=True)
    title = ma.fields.String(dump_only=True, required=True)
    url = ma.fields.String(dump_only=True, required=True)


class SearchResultSchema(Schema):
    query = ma.fields.String(dump_only=True, required=True, metadata={"description": "the query searched (trimmed)"})
    exact = ma.fields.Nested(
        SearchExactSchema,
        dump_only=True,
        required=True,
        allow_none=True,
        metadata={
            "description": (
                "the object the query names exactly (a ticket number, case-insensitive, INC-12 for "
                "INC0000012 too; else an asset tag), for the UI to go straight to; null when none"
            )
        },
    )
    results = ma.fields.List(
        ma.fields.Nested(SearchItemSchema),
        dump_only=True,
        required=True,
        metadata={
            "description": "the best matches of every type asked for (at most limit per type), ranked by "
            "score, highest first: an exact ticket number or asset tag comes first"
        },
    )
    groups = ma.fields.List(
        ma.fields.Nested(SearchGroupSchema),
        dump_only=True,
        required=True,
        metadata={"description": "per type asked for, in that order, how many match (empty ones too, total 0)"},
    )
