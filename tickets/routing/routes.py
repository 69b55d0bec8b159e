"""/routing-rules, /routing-rules/order, /routing-rules/dry-run, /team-assignments: who gets a
new ticket, as data."""

from __future__ import annotations

from flask.views import MethodView

from cairn.api import Blueprint, check_if_match, with_etag
from cairn.auth.guard import current_user, requires
from cairn.auth.roles import ADMIN, AGENT, STAFF_READERS
from cairn.auth.scopes import READ, scope
from cairn.pagination import paginate_select
from tickets.routing import services
from tickets.routing.schemas import (
    DryRunAnswerSchema,
    DryRunSchema,
    RoutingOrderSchema,
    RoutingRuleSchema,
    RoutingRuleUpdateSchema,
    TeamAssignmentSchema,
)

blp = Blueprint("routing", __name__, description="Routing rules and assignment within a team")


@blp.route("/routing-rules")
class RoutingRules(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, RoutingRuleSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """Routing rules in the order they are tried; the first that matches a ticket wins."""
        return paginate_select(services.routing_rules(), pagination_parameters)

    @requires(ADMIN)
    @blp.arguments(RoutingRuleSchema)
    @blp.response(201, RoutingRuleSchema)
    def post(self, data):
        """Create a routing rule: conditions (all must hold) and actions."""
        return with_etag(services.save_rule(data))


@blp.route("/routing-rules/<int:rule_id>")
class RoutingRuleById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, RoutingRuleSchema)
    def get(self, rule_id):
        """One routing rule."""
        return with_etag(services.get_rule(rule_id))

    @requires(ADMIN)
    @blp.arguments(RoutingRuleUpdateSchema)
    @blp.response(200, RoutingRuleSchema)
    def patch(self, data, rule_id):
        """Change a routing rule (``match`` and ``actions`` merge: a key sent as null clears it)."""
        rule = services.get_rule(rule_id, for_update=True)
        check_if_match(rule)
        return with_etag(services.save_rule(data, rule))

    @requires(ADMIN)
    @blp.response(204)
    def delete(self, rule_id):
        """Delete a routing rule (the tickets it routed keep their history)."""
        rule = services.get_rule(rule_id, for_update=True)
        check_if_match(rule)
        services.delete_rule(rule)


@blp.route("/routing-rules/order")
class RoutingOrder(MethodView):
    @requires(ADMIN)
    @blp.arguments(RoutingOrderSchema)
    @blp.response(200, RoutingRuleSchema(many=True))
    def put(self, data):
        """Reorder the rules: every rule's id, in the order to try them."""
        return services.reorder(data["ids"])


@blp.route("/routing-rules/dry-run")
class RoutingDryRun(MethodView):
    @requires(ADMIN, AGENT)
    @scope(READ)
    @blp.arguments(DryRunSchema)
    @blp.response(200, DryRunAnswerSchema)
    def post(self, data):
        """Which rule would route a ticket (a draft, or an existing one), why each rule before it
        did not match, and what it would set; changes nothing."""
        return services.dry_run(data, current_user())


@blp.route("/team-assignments")
class TeamAssignments(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, TeamAssignmentSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """The teams with assignment settings (any other team assigns manually)."""
        rows = paginate_select(services.team_assignments(), pagination_parameters)
        return [services.view(row) for row in rows]


@blp.route("/team-assignments/<int:team_id>")
class TeamAssignmentById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, TeamAssignmentSchema)
    def get(self, team_id):
        """A team's assignment settings and who is on shift now."""
        return services.view(services.assignment_of(team_id))

    @requires(ADMIN)
    @blp.arguments(TeamAssignmentSchema)
    @blp.response(200, TeamAssignmentSchema)
    def put(self, data, team_id):
        """Set how the team hands out new tickets: manual, round_robin or least_loaded."""
        return services.view(services.save_assignment(team_id, data))

    @requires(ADMIN)
    @blp.response(204)
    def delete(self, team_id):
        """Back to manual assignment."""
        services.delete_assignment(team_id)
