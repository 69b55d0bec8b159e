"""Request and answer shapes of calendars, SLA policies and escalation rules."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload

from cairn.api import FullMatch, Id, OneOf, Schema, Text
from cairn.zones import time_zones
from tickets.models import KINDS
from tickets.slas import clocks
from tickets.slas.models import ESCALATION_TRIGGERS, POLICY_TYPES

MAX_INTERVALS_PER_DAY = 12
MAX_CLOSURES = 2000
MAX_SECONDS = 10 * 366 * 24 * 3600
TIME = FullMatch(r"(([01][0-9]|2[0-3]):[0-5][0-9])|24:00", "A local time HH:MM (00:00 to 24:00).")
DAY_OR_TIME = FullMatch(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?",
    "A date YYYY-MM-DD (all day) or a local date-time YYYY-MM-DDTHH:MM.",
)


def _zone(value: str) -> None:
    if value not in time_zones():
        raise ma.ValidationError("Not an IANA time zone (such as Europe/Berlin).")


def _interval_list():
    interval = ma.fields.List(ma.fields.String(validate=TIME), validate=ma.validate.Length(equal=2))
    return ma.fields.List(
        interval,
        validate=ma.validate.Length(max=MAX_INTERVALS_PER_DAY),
        metadata={"description": "[start, end] local times; end after start on the same day (24:00 ends it)"},
    )


class CalendarHoursSchema(Schema):
    """Open hours per weekday. An overnight shift is two intervals: 22:00-24:00 and 00:00-06:00."""

    mon = _interval_list()
    tue = _interval_list()
    wed = _interval_list()
    thu = _interval_list()
    fri = _interval_list()
    sat = _interval_list()
    sun = _interval_list()

    @ma.validates_schema
    def _ordered(self, data, **kwargs):
        errors = {}
        for day, intervals in data.items():
            spans = sorted((_minutes(start), _minutes(end)) for start, end in intervals)
            if any(start >= end for start, end in spans):
                errors[day] = ["Each interval ends after it starts, on the same day (write 24:00 for midnight)."]
            elif any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
                errors[day] = ["Intervals of a day may not overlap."]
        if errors:
            raise ma.ValidationError(errors)


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class CalendarClosureSchema(Schema):
    name = Text(200, min_length=1, required=True)
    start = ma.fields.String(required=True, validate=DAY_OR_TIME)
    end = ma.fields.String(
        validate=DAY_OR_TIME,
        metadata={"description": "a date: the last closed day (inclusive); a date-time: when it reopens"},
    )

    @ma.validates_schema
    def _ordered(self, data, **kwargs):
        if "start" not in data:
            return
        end = data.get("end", data["start"])
        if (len(data["start"]) == 10) != (len(end) == 10):
            raise ma.ValidationError("start and end are both dates or both date-times.", "end")
        try:
            start_at, end_at = clocks.parse_closure(data)
        except (ValueError, OverflowError) as error:
            raise ma.ValidationError(f"Not a valid date: {error}.", "start") from error
        if end_at <= start_at:
            raise ma.ValidationError("The closure ends before it starts.", "end")


class RecomputeSchema(Schema):
    """A recomputation of open tickets' clocks after an edit (a durable job): poll its ``href``."""

    id = ma.fields.Integer()
    href = ma.fields.Function(lambda row: f"/api/v1/sla-recomputes/{row.id}")
    status = ma.fields.String(
        metadata={"description": "queued, running, done, failed, or merged (its work done by merged_into_id's run)"}
    )
    reason = ma.fields.String()
    actor = ma.fields.String()
    rematch = ma.fields.Boolean(metadata={"description": "policies picked again before the clocks"})
    policy_ids = ma.fields.List(ma.fields.Integer(), allow_none=True, metadata={"description": "null: all"})
    merged_into_id = ma.fields.Integer(allow_none=True)
    tickets = ma.fields.Integer(metadata={"description": "open tickets read so far"})
    changed = ma.fields.Integer(metadata={"description": "tickets whose clocks moved"})
    error = ma.fields.String()
    created_at = ma.fields.DateTime()
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)


RECOMPUTE_HELP = "after an edit that moves clocks: the recomputation of open tickets, queued (null: none)"


class CalendarSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    time_zone = Text(64, required=True, validate=_zone, metadata={"description": "IANA, e.g. Europe/Berlin"})
    hours = ma.fields.Nested(CalendarHoursSchema, required=True)
    closures = ma.fields.List(
        ma.fields.Nested(CalendarClosureSchema),
        validate=ma.validate.Length(max=MAX_CLOSURES),
        metadata={"description": "holidays and exceptional closures, in the calendar's local time"},
    )
    recompute = ma.fields.Nested(
        RecomputeSchema, dump_only=True, allow_none=True, metadata={"description": RECOMPUTE_HELP}
    )
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class CalendarUpdateSchema(CalendarSchema):
    name = Text(200, min_length=1)
    time_zone = Text(64, validate=_zone)
    hours = ma.fields.Nested(CalendarHoursSchema)


class CalendarImportSchema(Schema):
    file = Upload(required=True, metadata={"description": "an iCalendar (.ics) file, at most 1 MB"})


class CalendarImportAnswerSchema(Schema):
    calendar = ma.fields.Nested(CalendarSchema)
    imported = ma.fields.Integer(metadata={"description": "closures added"})
    skipped_recurring = ma.fields.Integer(metadata={"description": "events with RRULE, not expanded"})


class SLAMatchSchema(Schema):
    """Conditions on the ticket; one left out (or null) matches every ticket."""

    kind = OneOf(KINDS, allow_none=True)
    priority = ma.fields.Integer(strict=True, allow_none=True, validate=ma.validate.Range(min=1, max=5))
    category_id = Id(allow_none=True)
    team_id = Id(
        allow_none=True,
        metadata={"description": "SLA policy: the requester's team; OLA policy and escalation rule: the assigned team"},
    )
    service_ci_id = Id(allow_none=True, metadata={"description": "a CI linked to the ticket"})


def Seconds(**kwargs) -> ma.fields.Integer:
    return ma.fields.Integer(strict=True, validate=ma.validate.Range(min=0, max=MAX_SECONDS), **kwargs)


class SLAPolicySchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    type = OneOf(
        POLICY_TYPES,
        load_default="sla",
        metadata={"description": "sla: the customer's clock from creation; ola: the assigned team's clock"},
    )
    calendar_id = Id(required=True)
    match = ma.fields.Nested(SLAMatchSchema, load_default=dict)
    response_seconds = Seconds(required=True, metadata={"description": "business seconds"})
    resolution_seconds = Seconds(required=True, metadata={"description": "business seconds"})
    warn_at = ma.fields.Float(
        load_default=0.75,
        validate=ma.validate.Range(min=0, max=1, min_inclusive=False),
        metadata={"description": "the share of a target at which it warns"},
    )
    order = ma.fields.Integer(
        strict=True,
        load_default=0,
        validate=ma.validate.Range(min=-1_000_000, max=1_000_000),
        metadata={"description": "among equally specific matches, the lowest wins"},
    )
    recompute = ma.fields.Nested(
        RecomputeSchema, dump_only=True, allow_none=True, metadata={"description": RECOMPUTE_HELP}
    )
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class SLAPolicyUpdateSchema(SLAPolicySchema):
    name = Text(200, min_length=1)
    type = OneOf(POLICY_TYPES)
    calendar_id = Id()
    match = ma.fields.Nested(SLAMatchSchema)
    response_seconds = Seconds()
    resolution_seconds = Seconds()
    warn_at = ma.fields.Float(validate=ma.validate.Range(min=0, max=1, min_inclusive=False))
    order = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=-1_000_000, max=1_000_000))


NOTIFY_HELP = "assignee, team (its address, else its members) or e-mail addresses"


def _recipient(value: str) -> None:
    if value not in ("assignee", "team"):
        ma.validate.Email(error="Not assignee, team or an e-mail address.")(value)


class EscalationActionSchema(Schema):
    """One action: exactly one of its fields."""

    notify = ma.fields.List(
        Text(254, validate=_recipient),
        validate=ma.validate.Length(min=1, max=50),
        metadata={"description": NOTIFY_HELP},
    )
    reassign_team_id = Id()
    raise_priority = ma.fields.Boolean(metadata={"description": "true: one step more urgent"})
    add_watcher_id = Id()

    @ma.validates_schema
    def _one(self, data, **kwargs):
        if len(data) != 1:
            raise ma.ValidationError(
                "Each action has exactly one of notify, reassign_team_id, raise_priority, add_watcher_id."
            )
        if data.get("raise_priority") is False:
            raise ma.ValidationError("Leave raise_priority out instead of sending false.", "raise_priority")


class EscalationRuleSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    name = Text(200, min_length=1, required=True)
    on = OneOf(ESCALATION_TRIGGERS, required=True)
    idle_business_hours = ma.fields.Float(
        allow_none=True,
        validate=ma.validate.Range(min=0, max=100_000, min_inclusive=False),
        metadata={"description": "on idle: business hours (of the ticket's SLA calendar) without a change"},
    )
    match = ma.fields.Nested(SLAMatchSchema, load_default=dict)
    actions = ma.fields.List(
        ma.fields.Nested(EscalationActionSchema), required=True, validate=ma.validate.Length(min=1, max=20)
    )
    order = ma.fields.Integer(strict=True, load_default=0, validate=ma.validate.Range(min=-1_000_000, max=1_000_000))
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class EscalationRuleUpdateSchema(EscalationRuleSchema):
    name = Text(200, min_length=1)
    on = OneOf(ESCALATION_TRIGGERS)
    match = ma.fields.Nested(SLAMatchSchema)
    actions = ma.fields.List(ma.fields.Nested(EscalationActionSchema), validate=ma.validate.Length(min=1, max=20))
    order = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=-1_000_000, max=1_000_000))


class SLARefSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class SLAClockSchema(Schema):
    """A business-hours clock of a ticket; remaining seconds are negative when overdue, null once
    the target is met (responded, resolved)."""

    policy = ma.fields.Nested(SLARefSchema)
    calendar = ma.fields.Nested(SLARefSchema)
    started_at = ma.fields.DateTime()
    response_remaining_seconds = ma.fields.Integer(allow_none=True)
    resolution_remaining_seconds = ma.fields.Integer(allow_none=True)
    response_due_at = ma.fields.DateTime(allow_none=True)
    resolution_due_at = ma.fields.DateTime(allow_none=True)
    paused = ma.fields.Boolean()
    warned = ma.fields.Boolean()
    breached = ma.fields.Boolean()
    response_breached = ma.fields.Boolean()
    resolution_breached = ma.fields.Boolean()
