"""Saved views in and out of the API. What a view's filters and sort may hold is the list's own
query schema's business (integrations/views/services.py checks them against it)."""

from __future__ import annotations

import marshmallow as ma

from cairn.api import Id, OneOf, QueryId, Schema, Text
from integrations.views.models import RESOURCES

MAX_FILTERS = 30
MAX_COLUMNS = 30


class SavedViewWriteSchema(Schema):
    name = Text(100, min_length=1, required=True)
    resource = OneOf(RESOURCES, required=True)
    filters = ma.fields.Dict(
        keys=Text(60),
        values=Text(2000),
        validate=ma.validate.Length(max=MAX_FILTERS),
        metadata={"description": 'the list\'s query parameters as the API takes them, e.g. {"status": "deployed"}'},
    )
    columns = ma.fields.List(Text(60), validate=ma.validate.Length(max=MAX_COLUMNS))
    sort = Text(200, metadata={"description": "as the list's sort parameter: comma-separated, - for descending"})
    shared_with_team_id = Id(allow_none=True, metadata={"description": "a team of yours; null: private"})


class SavedViewUpdateSchema(SavedViewWriteSchema):
    name = Text(100, min_length=1)
    resource = OneOf(RESOURCES, metadata={"description": "cannot change; given, it must be the view's"})


class SavedViewQuerySchema(Schema):
    resource = OneOf(RESOURCES)
    team_id = QueryId(metadata={"description": "only the views shared with this team"})


class SavedViewSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    resource = ma.fields.String()
    filters = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    columns = ma.fields.List(ma.fields.String())
    sort = ma.fields.String()
    owner_id = ma.fields.Integer()
    shared_with_team_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
