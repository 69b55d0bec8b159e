"""/events (intake and the alerts' state), /events/alertmanager (Alertmanager's webhook),
/event-bindings (the binding rules) and /tickets/{id}/events (what an incident was made of)."""

from __future__ import annotations

from functools import wraps

import marshmallow as ma
from flask import request
from flask.views import MethodView

from cairn.api import Blueprint, check_if_match, with_etag
from cairn.auth.guard import requires
from cairn.auth.roles import ADMIN, INTEGRATION, STAFF_READERS
from cairn.auth.scopes import ADMIN as ADMIN_SCOPE
from cairn.auth.scopes import scope
from cairn.pagination import paginate_select
from integrations.events import binding, services, settings
from integrations.events.schemas import (
    AlertmanagerWebhookSchema,
    BindingSchema,
    EventDetailSchema,
    EventInSchema,
    EventQuerySchema,
    EventsAcceptedSchema,
    EventSchema,
    TicketEventsQuerySchema,
    TicketEventsSchema,
    from_alertmanager,
    normalise,
)
from tickets.services import get_ticket

blp = Blueprint("events", __name__, description="Monitoring events: alerts in, incidents out")

EVENT_SENDERS = (ADMIN, INTEGRATION)


def _capped(func):
    """The request body cap of the intake (CAIRN_EVENTS_MAX_BYTES), set before the body is read."""

    @wraps(func)
    def capped(*args, **kwargs):
        request.max_content_length = int(settings.get("CAIRN_EVENTS_MAX_BYTES"))
        return func(*args, **kwargs)

    return capped


class EventBodySchema(ma.Schema):
    """One event, or a list of them; a bad event is named by its index in the list."""

    def load(self, data, *, many=None, partial=None, unknown=None):
        limit = int(settings.get("CAIRN_EVENTS_MAX_PER_REQUEST"))
        if isinstance(data, dict):
            return [normalise(EventInSchema().load(data))]
        if not isinstance(data, list) or not 1 <= len(data) <= limit:
            raise ma.ValidationError({"_schema": [f"Send an event object or a list of 1 to {limit} of them."]})
        return [normalise(event) for event in EventInSchema(many=True).load(data)]


def _body_doc() -> dict:
    limit = settings.DEFAULTS["CAIRN_EVENTS_MAX_PER_REQUEST"]
    one = EventInSchema
    schema = {"oneOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": limit}]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _accepted(rows) -> tuple[dict, int]:
    return {"accepted": len(rows), "ids": [row.id for row in rows]}, 202


@blp.route("/events")
class Events(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(EventQuerySchema, location="query")
    @blp.response(200, EventSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """Alerts as they are now (one per source and fingerprint), last seen first; ?bound=false: unbound."""
        return paginate_select(services.search(filters), pagination_parameters)

    @requires(*EVENT_SENDERS)
    @_capped
    @blp.arguments(EventBodySchema)
    @blp.doc(**_body_doc())
    @blp.response(202, EventsAcceptedSchema)
    def post(self, events):
        """Send one event or a list: stored at once, bound, correlated and turned into incidents by a job."""
        return _accepted(services.accept(events))


@blp.route("/events/alertmanager")
class AlertmanagerWebhook(MethodView):
    @requires(*EVENT_SENDERS)
    @_capped
    @blp.arguments(AlertmanagerWebhookSchema)
    @blp.response(202, EventsAcceptedSchema)
    def post(self, body):
        """Prometheus Alertmanager's webhook receiver (webhook_configs url), its body as Alertmanager sends it."""
        return _accepted(services.accept(from_alertmanager(body)))


@blp.route("/events/<int:event_id>")
class EventById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, EventDetailSchema)
    def get(self, event_id):
        """One alert, with its history (every occurrence received, newest first)."""
        alert = services.get_event(event_id)
        alert.history = services.history(alert)
        return alert


@blp.route("/tickets/<int:ticket_id>/events")
class TicketEvents(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(TicketEventsQuerySchema, location="query")
    @blp.response(200, TicketEventsSchema)
    def get(self, args, ticket_id):
        """The alerts correlated into this incident (or suppressed into this change) and the reasoning."""
        return services.ticket_events(get_ticket(ticket_id), args.get("status"))


@blp.route("/event-bindings")
class EventBindings(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, BindingSchema(many=True))
    def get(self):
        """The binding rules, in the order they apply (after the events' own CI hints)."""
        return binding.rules()

    @requires(ADMIN)
    @scope(ADMIN_SCOPE)
    @blp.arguments(BindingSchema)
    @blp.response(201, BindingSchema)
    def post(self, data):
        """Add a rule: the value of label ``label`` names a CI by ``ci_field`` (of class ``ci_class``)."""
        return with_etag(binding.create_rule(data), 201)


@blp.route("/event-bindings/<int:rule_id>")
class EventBindingById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, BindingSchema)
    def get(self, rule_id):
        """One binding rule."""
        return with_etag(binding.get_rule(rule_id))

    @requires(ADMIN)
    @scope(ADMIN_SCOPE)
    @blp.response(204)
    def delete(self, rule_id):
        """Delete a rule (events already bound keep their CI)."""
        rule = binding.get_rule(rule_id)
        check_if_match(rule)
        binding.delete_rule(rule)
