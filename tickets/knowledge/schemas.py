"""Request and answer shapes of knowledge articles, their versions, suggestions and resolutions."""

from __future__ import annotations

import marshmallow as ma
from webargs.fields import DelimitedList

from cairn.api import Id, OneOf, QueryId, Schema, Text
from tickets.knowledge.models import STATES, VISIBILITIES
from tickets.knowledge.search import MAX_QUERY_LENGTH
from tickets.knowledge.services import MAX_BODY, MAX_LINKS, MAX_TITLE
from tickets.workflow import RESOLUTION_CODES

SORTS = ("-updated_at", "title", "-resolved_count")


def _ids(description: str):
    return ma.fields.List(Id(), validate=ma.validate.Length(max=MAX_LINKS), metadata={"description": description})


class AuthorSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class ArticleSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    title = Text(MAX_TITLE, min_length=1, required=True)
    body = Text(MAX_BODY, load_default="", metadata={"description": "Markdown (CommonMark, tables)"})
    body_html = ma.fields.String(dump_only=True, metadata={"description": "the body rendered and sanitised"})
    state = OneOf(
        STATES,
        load_default="draft",
        metadata={"description": "draft -> review -> published -> retired; publishing: admin, change_manager"},
    )
    visibility = OneOf(
        VISIBILITIES, load_default="agents", metadata={"description": "agents: staff only; everyone: requesters too"}
    )
    revision = ma.fields.Integer(dump_only=True, metadata={"description": "the content's version number"})
    ci_ids = _ids("CIs the article is about")
    ci_classes = ma.fields.List(
        Text(60, min_length=1), validate=ma.validate.Length(max=MAX_LINKS), metadata={"description": "CI classes"}
    )
    category_ids = _ids("ticket categories")
    problem_ids = _ids("problems (a known error's workaround)")
    resolved_count = ma.fields.Integer(dump_only=True, metadata={"description": "tickets it resolved"})
    author = ma.fields.Nested(AuthorSchema, dump_only=True, allow_none=True)
    published_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class ArticleUpdateSchema(ArticleSchema):
    title = Text(MAX_TITLE, min_length=1)
    body = Text(MAX_BODY, metadata={"description": "Markdown (CommonMark, tables)"})
    state = OneOf(STATES, metadata={"description": "a legal move from the current state, else 409"})
    visibility = OneOf(VISIBILITIES)


class ArticleQuerySchema(Schema):
    q = Text(MAX_QUERY_LENGTH, metadata={"description": "words; every one begins a word of the title or body"})
    state = DelimitedList(OneOf(STATES), validate=ma.validate.Length(max=4))
    visibility = OneOf(VISIBILITIES)
    ci_id = QueryId()
    ci_class = Text(60)
    category_id = QueryId()
    problem_id = QueryId()
    sort = OneOf(SORTS, metadata={"description": "without q; with q the best match comes first"})


class VersionBriefSchema(Schema):
    revision = ma.fields.Integer()
    title = ma.fields.String()
    state = ma.fields.String()
    at = ma.fields.DateTime()
    actor = ma.fields.String()


class VersionSchema(VersionBriefSchema):
    body = ma.fields.String()
    body_html = ma.fields.String()


class ArticleBriefSchema(Schema):
    id = ma.fields.Integer()
    title = ma.fields.String()
    state = ma.fields.String()
    visibility = ma.fields.String()
    resolved_count = ma.fields.Integer()


class SuggestionSchema(Schema):
    article = ma.fields.Nested(ArticleBriefSchema)
    excerpt = ma.fields.String()
    score = ma.fields.Float()
    reasons = ma.fields.List(
        ma.fields.String(), metadata={"description": "words, ci, ci_class, category: what made it a suggestion"}
    )


class SuggestQuerySchema(Schema):
    limit = ma.fields.Integer(load_default=5, validate=ma.validate.Range(min=1, max=20))


class SuggestDraftSchema(Schema):
    title = Text(200, load_default="")
    description = Text(20_000, load_default="")
    ci_ids = ma.fields.List(Id(), validate=ma.validate.Length(max=MAX_LINKS), load_default=list)
    category_id = Id(allow_none=True, load_default=None)
    limit = ma.fields.Integer(strict=True, load_default=5, validate=ma.validate.Range(min=1, max=20))


class ResolutionWriteSchema(Schema):
    article_id = Id(required=True)
    resolve = ma.fields.Boolean(
        load_default=False, metadata={"description": "also move the ticket to resolved, the article named in the note"}
    )
    note = Text(5000, allow_none=True, load_default=None)
    resolution_code = OneOf(RESOLUTION_CODES, load_default="fixed")


class ResolutionSchema(Schema):
    ticket_id = ma.fields.Integer()
    article = ma.fields.Nested(ArticleBriefSchema)
    linked_by_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
