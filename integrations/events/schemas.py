"""Shapes of the event endpoints: the generic event, Alertmanager's webhook (version 4, as 0.25
sends it), binding rules, and the alerts and groups read back."""

from __future__ import annotations

from datetime import UTC, datetime

import marshmallow as ma

from cairn.api import Id, OneOf, QueryId, Schema, Text, When
from integrations.events.models import ALERT_STATUSES, CI_FIELDS, DISPOSITIONS

MAX_LABELS = 64
LABEL_KEY_CHARS = 128
LABEL_VALUE_CHARS = 1024
# Go's zero time: Alertmanager's endsAt of an alert still firing.
_NO_TIME_BEFORE = datetime(1971, 1, 1, tzinfo=UTC)


def _labels_fit(labels: dict) -> None:
    if len(labels) > MAX_LABELS:
        raise ma.ValidationError(f"At most {MAX_LABELS} labels.")
    if any(not 1 <= len(key) <= LABEL_KEY_CHARS for key in labels):
        raise ma.ValidationError(f"Label names have 1 to {LABEL_KEY_CHARS} characters.")


def Labels(**kwargs) -> ma.fields.Dict:
    return ma.fields.Dict(
        keys=ma.fields.String(),
        values=Text(LABEL_VALUE_CHARS),
        validate=_labels_fit,
        metadata={
            "description": f"At most {MAX_LABELS} labels; names of 1 to {LABEL_KEY_CHARS} characters, values up to "
            f"{LABEL_VALUE_CHARS}",
            "maxProperties": MAX_LABELS,
            "propertyNames": {"minLength": 1, "maxLength": LABEL_KEY_CHARS},
        },
        **kwargs,
    )


def _time_or_none(value: datetime | None) -> datetime | None:
    return None if value is None or value.year < _NO_TIME_BEFORE.year else value


class ExternalIdHintSchema(Schema):
    source = Text(100, min_length=1, required=True)
    id = Text(255, min_length=1, required=True)


class CIHintSchema(Schema):
    """Whatever the sender knows of the CI; the first that names exactly one CI wins, in this order."""

    id = Id()
    external_id = ma.fields.Nested(ExternalIdHintSchema)
    hostname = Text(253, min_length=1)
    ip = Text(64, min_length=1)


class EventInSchema(Schema):
    source = Text(100, min_length=1, required=True, metadata={"description": "The monitoring system"})
    fingerprint = Text(255, min_length=1, required=True, metadata={"description": "The alert's identity in its source"})
    status = OneOf(ALERT_STATUSES, required=True)
    severity = Text(30, metadata={"description": "critical, error, warning, info... (default warning)"})
    summary = Text(500)
    ci = ma.fields.Nested(CIHintSchema)
    labels = Labels()
    starts_at = When(allow_none=True)
    ends_at = When(allow_none=True)
    generator_url = Text(2000, allow_none=True)


class EventsAcceptedSchema(Schema):
    accepted = ma.fields.Integer(metadata={"description": "Occurrences stored, queued for processing"})
    ids = ma.fields.List(ma.fields.Integer(), metadata={"description": "Their ids, in the order sent"})


class AlertmanagerAlertSchema(Schema):
    class Meta:
        unknown = ma.EXCLUDE  # fields later Alertmanager versions add are not ours to refuse

    status = OneOf(ALERT_STATUSES, required=True)
    labels = Labels(required=True)
    annotations = Labels(load_default=dict)
    startsAt = When(required=True)
    endsAt = When(allow_none=True)
    generatorURL = Text(2000, load_default="")
    fingerprint = Text(255, min_length=1, required=True)


class AlertmanagerWebhookSchema(Schema):
    """Alertmanager's webhook body (``version: "4"``)."""

    class Meta:
        unknown = ma.EXCLUDE

    version = OneOf(("4",), required=True)
    groupKey = Text(10_000, required=True)
    truncatedAlerts = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0, max=10**9))
    status = OneOf(ALERT_STATUSES, required=True)
    receiver = Text(255, required=True)
    groupLabels = Labels(load_default=dict)
    commonLabels = Labels(load_default=dict)
    commonAnnotations = Labels(load_default=dict)
    externalURL = Text(2000, load_default="")
    alerts = ma.fields.List(
        ma.fields.Nested(AlertmanagerAlertSchema), required=True, validate=ma.validate.Length(min=1)
    )


def from_alertmanager(body: dict) -> list[dict]:
    """The webhook's alerts as generic events (source ``alertmanager``, Alertmanager's fingerprint)."""
    events = []
    for alert in body["alerts"]:
        labels, annotations = alert["labels"], alert["annotations"]
        summary = annotations.get("summary") or annotations.get("description") or labels.get("alertname", "")
        events.append(
            {
                "source": "alertmanager",
                "fingerprint": alert["fingerprint"],
                "status": alert["status"],
                "severity": labels.get("severity") or "warning",
                "summary": summary[:500],
                "labels": labels,
                "starts_at": _time_or_none(alert["startsAt"]),
                "ends_at": _time_or_none(alert.get("endsAt")),
                "generator_url": alert.get("generatorURL") or None,
            }
        )
    return events


def normalise(event: dict) -> dict:
    event = dict(event)
    event["starts_at"] = _time_or_none(event.get("starts_at"))
    event["ends_at"] = _time_or_none(event.get("ends_at"))
    return event


class EventQuerySchema(Schema):
    status = OneOf(ALERT_STATUSES)
    ci_id = QueryId()
    bound = ma.fields.Boolean(metadata={"description": "false: the events no hint or rule bound to a CI"})
    source = Text(100)
    group_id = QueryId()
    ticket_id = QueryId()
    disposition = OneOf(DISPOSITIONS)


class CIRefSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    ci_class = ma.fields.String()


class EventSchema(Schema):
    id = ma.fields.Integer()
    source = ma.fields.String()
    fingerprint = ma.fields.String()
    status = ma.fields.String(metadata={"description": "firing | resolved: the alert's current state"})
    severity = ma.fields.String()
    summary = ma.fields.String()
    labels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    ci_hints = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw())
    ci_id = ma.fields.Integer(allow_none=True)
    bound_by = ma.fields.String(allow_none=True, metadata={"description": "How the CI was found, or why none was"})
    disposition = OneOf(DISPOSITIONS)
    group_id = ma.fields.Integer(allow_none=True)
    ticket_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "Its incident, or the change that suppressed it"}
    )
    starts_at = ma.fields.DateTime(allow_none=True)
    ends_at = ma.fields.DateTime(allow_none=True)
    first_seen_at = ma.fields.DateTime()
    last_seen_at = ma.fields.DateTime()
    last_change_at = ma.fields.DateTime()
    flapping = ma.fields.Method("_flapping", metadata={"type": "boolean"})
    occurrences = ma.fields.Integer()

    def _flapping(self, alert) -> bool:
        return (alert.flap_count or 0) >= 2


class OccurrenceSchema(Schema):
    id = ma.fields.Integer()
    received_at = ma.fields.DateTime()
    status = ma.fields.String()
    severity = ma.fields.String()
    summary = ma.fields.String()
    labels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    starts_at = ma.fields.DateTime(allow_none=True)
    ends_at = ma.fields.DateTime(allow_none=True)
    generator_url = ma.fields.String(allow_none=True)
    processing = ma.fields.String()
    outcome = ma.fields.String(allow_none=True)


class EventDetailSchema(EventSchema):
    history = ma.fields.List(ma.fields.Nested(OccurrenceSchema), metadata={"description": "Newest first"})


class GroupSchema(Schema):
    id = ma.fields.Integer()
    state = ma.fields.String()
    root_ci_id = ma.fields.Integer()
    rule = ma.fields.String(metadata={"description": "single_ci | alerting_ancestor | widest_blast_radius"})
    reasoning = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw())
    alert_count = ma.fields.Integer()
    firing_count = ma.fields.Integer()
    opened_at = ma.fields.DateTime()
    resolved_at = ma.fields.DateTime(allow_none=True)
    merged_into_id = ma.fields.Integer(allow_none=True)


class TicketEventsSchema(Schema):
    ticket_id = ma.fields.Integer()
    groups = ma.fields.List(
        ma.fields.Nested(GroupSchema), metadata={"description": "The correlation and its reasoning"}
    )
    events = ma.fields.List(ma.fields.Nested(EventSchema))


class TicketEventsQuerySchema(Schema):
    status = OneOf(ALERT_STATUSES)


class BindingSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    position = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=0, max=100_000), strict=True)
    label = Text(LABEL_KEY_CHARS, min_length=1, required=True)
    ci_field = OneOf(CI_FIELDS, required=True, metadata={"description": "hostname_or_ip strips a :port"})
    ci_class = Text(50, min_length=1, allow_none=True, metadata={"description": "For name: the class the CI has"})
    external_source = Text(100, min_length=1, allow_none=True)
    enabled = ma.fields.Boolean(load_default=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)
