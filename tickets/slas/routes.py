"""/calendars, /sla-policies, /escalation-rules: business hours and service levels as data."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort

from cairn.api import Blueprint, check_if_match, with_etag
from cairn.auth.guard import requires
from cairn.auth.roles import ADMIN, STAFF_READERS
from cairn.db import get_or_404
from cairn.http import accepts
from cairn.pagination import paginate_select
from tickets.slas import ical, recompute, services
from tickets.slas.models import BusinessCalendar, EscalationRule, SLAPolicy, SLARecompute
from tickets.slas.schemas import (
    CalendarImportAnswerSchema,
    CalendarImportSchema,
    CalendarSchema,
    CalendarUpdateSchema,
    EscalationRuleSchema,
    EscalationRuleUpdateSchema,
    RecomputeSchema,
    SLAPolicySchema,
    SLAPolicyUpdateSchema,
)

blp = Blueprint("slas", __name__, description="Business-hours calendars, SLA/OLA policies and escalation rules")


@blp.route("/calendars")
class Calendars(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, CalendarSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """Business-hours calendars."""
        return paginate_select(services.calendars(), pagination_parameters)

    @requires(ADMIN)
    @blp.arguments(CalendarSchema)
    @blp.response(201, CalendarSchema)
    def post(self, data):
        """Create a calendar: a time zone, open hours per weekday, closures."""
        return with_etag(services.save_calendar(data))


@blp.route("/calendars/<int:calendar_id>")
class CalendarById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, CalendarSchema)
    def get(self, calendar_id):
        """One calendar."""
        return with_etag(get_or_404(BusinessCalendar, calendar_id))

    @requires(ADMIN)
    @blp.arguments(CalendarUpdateSchema)
    @blp.response(200, CalendarSchema)
    def patch(self, data, calendar_id):
        """Change a calendar; the clocks of the open tickets it times are recomputed in a durable job,
        queued once this commits: follow ``recompute.href``."""
        calendar = get_or_404(BusinessCalendar, calendar_id, for_update=True)
        check_if_match(calendar)
        return with_etag(services.save_calendar(data, calendar))

    @requires(ADMIN)
    @blp.response(204)
    def delete(self, calendar_id):
        """Delete a calendar no SLA policy uses."""
        calendar = get_or_404(BusinessCalendar, calendar_id, for_update=True)
        check_if_match(calendar)
        services.delete_calendar(calendar)


@blp.route("/calendars/<int:calendar_id>/ical")
class CalendarImport(MethodView):
    @requires(ADMIN)
    @accepts("multipart/form-data")
    @blp.arguments(CalendarImportSchema, location="files")
    @blp.response(200, CalendarImportAnswerSchema)
    def post(self, files, calendar_id):
        """Add the events of an iCalendar file (multipart field ``file``) as closures."""
        calendar = get_or_404(BusinessCalendar, calendar_id, for_update=True)
        data = files["file"].stream.read(ical.MAX_BYTES + 1)
        if len(data) > ical.MAX_BYTES:
            abort(413, message=f"iCalendar files are limited to {ical.MAX_BYTES} bytes.")
        calendar, imported, skipped = services.import_ical(calendar, data)
        return {"calendar": calendar, "imported": imported, "skipped_recurring": skipped}


@blp.route("/sla-policies")
class Policies(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, SLAPolicySchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """SLA and OLA policies; a ticket gets the most specific match, then the lowest order."""
        return paginate_select(services.policies(), pagination_parameters)

    @requires(ADMIN)
    @blp.arguments(SLAPolicySchema)
    @blp.response(201, SLAPolicySchema)
    def post(self, data):
        """Create a policy; open tickets are matched again in a job (``recompute.href``)."""
        return with_etag(services.save_policy(data))


@blp.route("/sla-policies/<int:policy_id>")
class PolicyById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, SLAPolicySchema)
    def get(self, policy_id):
        """One policy."""
        return with_etag(get_or_404(SLAPolicy, policy_id))

    @requires(ADMIN)
    @blp.arguments(SLAPolicyUpdateSchema)
    @blp.response(200, SLAPolicySchema)
    def patch(self, data, policy_id):
        """Change a policy; open tickets are matched and recomputed in a job (``recompute.href``)."""
        policy = get_or_404(SLAPolicy, policy_id, for_update=True)
        check_if_match(policy)
        return with_etag(services.save_policy(data, policy))

    @requires(ADMIN)
    @blp.response(204)
    def delete(self, policy_id):
        """Delete a policy; its open tickets are matched again, in a job (``Link: rel=monitor``)."""
        policy = get_or_404(SLAPolicy, policy_id, for_update=True)
        check_if_match(policy)
        row = services.delete_policy(policy)
        if row is not None:  # the recomputation of its open tickets, queued (RFC 5989's monitor)
            return None, 204, {"Link": f'</api/v1/sla-recomputes/{row.id}>; rel="monitor"'}
        return None


@blp.route("/escalation-rules")
class EscalationRules(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, EscalationRuleSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """Escalation rules, fired by the periodic SLA scan."""
        return paginate_select(services.escalation_rules(), pagination_parameters)

    @requires(ADMIN)
    @blp.arguments(EscalationRuleSchema)
    @blp.response(201, EscalationRuleSchema)
    def post(self, data):
        """Create an escalation rule: on a warning, a breach or idleness, its actions."""
        return with_etag(services.save_escalation_rule(data))


@blp.route("/escalation-rules/<int:rule_id>")
class EscalationRuleById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, EscalationRuleSchema)
    def get(self, rule_id):
        """One escalation rule."""
        return with_etag(get_or_404(EscalationRule, rule_id))

    @requires(ADMIN)
    @blp.arguments(EscalationRuleUpdateSchema)
    @blp.response(200, EscalationRuleSchema)
    def patch(self, data, rule_id):
        """Change an escalation rule."""
        rule = get_or_404(EscalationRule, rule_id, for_update=True)
        check_if_match(rule)
        return with_etag(services.save_escalation_rule(data, rule))

    @requires(ADMIN)
    @blp.response(204)
    def delete(self, rule_id):
        """Delete an escalation rule."""
        rule = get_or_404(EscalationRule, rule_id, for_update=True)
        check_if_match(rule)
        services.delete_escalation_rule(rule)


@blp.route("/sla-recomputes")
class Recomputes(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, RecomputeSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """Recomputations of open tickets' clocks after calendar and policy edits, newest first."""
        return paginate_select(recompute.recent(), pagination_parameters)


@blp.route("/sla-recomputes/<int:recompute_id>")
class RecomputeById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, RecomputeSchema)
    def get(self, recompute_id):
        """One recomputation: queued, running (``tickets`` read so far), done, or merged into a later
        run (``merged_into_id``) that does its work."""
        return get_or_404(SLARecompute, recompute_id)
