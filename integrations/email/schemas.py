"""Shapes of the mail endpoints."""

import marshmallow as ma
from webargs.fields import DelimitedList

from cairn.api import OneOf, QueryId, Schema, Text
from integrations.email.intake import SOURCES
from integrations.email.models import INBOUND_STATUSES, OUTBOUND_STATUSES


class InboundAcceptedSchema(Schema):
    id = ma.fields.Integer()
    status = ma.fields.String()


class InboundPostArgsSchema(Schema):
    mailbox = Text(255, min_length=1, metadata={"description": "Dedup scope (default: default)"})
    kind = OneOf(("incident", "request"), metadata={"description": "Kind of a new ticket when no route matches"})


class InboundQuerySchema(Schema):
    status = DelimitedList(OneOf(INBOUND_STATUSES), validate=ma.validate.Length(max=4))
    source = OneOf(SOURCES)
    ticket_id = QueryId()
    from_address = Text(320)


class InboundEmailSchema(Schema):
    id = ma.fields.Integer()
    status = ma.fields.String()
    reason = ma.fields.String(allow_none=True)
    outcome = ma.fields.String(allow_none=True)
    ticket_id = ma.fields.Integer(allow_none=True)
    comment_id = ma.fields.Integer(allow_none=True)
    message_id = ma.fields.String(allow_none=True)
    mailbox = ma.fields.String()
    source = ma.fields.String()
    from_address = ma.fields.String(allow_none=True)
    subject = ma.fields.String(allow_none=True)
    size = ma.fields.Integer()
    sha256 = ma.fields.String()
    attempts = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    processed_at = ma.fields.DateTime(allow_none=True)


class OutboundQuerySchema(Schema):
    status = DelimitedList(OneOf(OUTBOUND_STATUSES), validate=ma.validate.Length(max=4))
    ticket_id = QueryId()
    recipient = Text(320)


class OutboundEmailSchema(Schema):
    id = ma.fields.Integer()
    ticket_id = ma.fields.Integer(allow_none=True)
    event = ma.fields.String()
    recipient = ma.fields.String()
    message_id = ma.fields.String()
    subject = ma.fields.String()
    status = ma.fields.String()
    reason = ma.fields.String(allow_none=True)
    attempts = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    sent_at = ma.fields.DateTime(allow_none=True)
