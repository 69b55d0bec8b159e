"""/catalogue-items, /catalogue-orders, /catalogue-approvals, /catalogue-tasks: the service
catalogue, ordering from it, approving orders and fulfilling them."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import func, select

from cairn.api import Blueprint, check_if_match, with_etag
from cairn.auth.guard import current_user, requires
from cairn.auth.policy import restricted
from cairn.auth.roles import ADMIN, AGENT, ALL_ROLES, ASSET_MANAGER, CHANGE_MANAGER, INTEGRATION
from cairn.auth.scopes import ADMIN as ADMIN_SCOPE
from cairn.auth.scopes import scope
from cairn.db import db
from cairn.errors import Conflict, NotFound
from cairn.pagination import paginate_select
from tickets.catalogue import services
from tickets.catalogue.models import CatalogueItem, CatalogueRequestItem
from tickets.catalogue.schemas import (
    ApprovalQuerySchema,
    CatalogueApprovalSchema,
    CatalogueItemQuerySchema,
    CatalogueItemSchema,
    CatalogueItemUpdateSchema,
    CatalogueTaskAnswerSchema,
    DecisionSchema,
    ItemOrderSchema,
    OrderAnswerSchema,
    OrderSchema,
    RequestItemFieldsSchema,
    RequestItemSchema,
    TaskCompleteSchema,
    TaskQuerySchema,
)

blp = Blueprint("catalogue", __name__, description="The service catalogue: items, orders, approvals, fulfilment tasks")

# Who works fulfilment tasks (within their teams; admins and integrations any).
WORKERS = (ADMIN, AGENT, CHANGE_MANAGER, ASSET_MANAGER, INTEGRATION)


def _page_of(rows: list, pagination_parameters) -> list:
    pagination_parameters.item_count = len(rows)
    start = (pagination_parameters.page - 1) * pagination_parameters.page_size
    return rows[start : start + pagination_parameters.page_size]


@blp.route("/catalogue-items")
class CatalogueItems(MethodView):
    @requires(*ALL_ROLES)
    @blp.arguments(CatalogueItemQuerySchema, location="query")
    @blp.response(200, CatalogueItemSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Catalogue items; requesters see the active ones they may order."""
        user = current_user()
        if restricted(user) or args.get("orderable"):
            rows = [i for i in services.orderable_items(user) if _matches(i, args)]
            return _page_of(rows, pagination_parameters)
        stmt = services.items(active=args.get("active"), category=args.get("category"), q=args.get("q"))
        return paginate_select(stmt, pagination_parameters)

    @requires(ADMIN)
    @scope(ADMIN_SCOPE)
    @blp.arguments(CatalogueItemSchema)
    @blp.response(201, CatalogueItemSchema)
    def post(self, data):
        """Define a catalogue item: its form, who may order it, approvals, fulfilment tasks."""
        return with_etag(services.save_item(data))


def _matches(item: CatalogueItem, args: dict) -> bool:
    if args.get("category") and item.category != args["category"]:
        return False
    return not args.get("q") or args["q"].lower() in item.name.lower()


@blp.route("/catalogue-items/<int:item_id>")
class CatalogueItemById(MethodView):
    @requires(*ALL_ROLES)
    @blp.response(200, CatalogueItemSchema)
    def get(self, item_id):
        """One catalogue item (requesters: one they may order)."""
        item = services.get_item(item_id)
        user = current_user()
        if restricted(user) and not services.may_order(item, user):
            raise NotFound(f"No catalogue item with id {item_id}.")  # as for an unknown id
        return with_etag(item)

    @requires(ADMIN)
    @scope(ADMIN_SCOPE)
    @blp.arguments(CatalogueItemUpdateSchema)
    @blp.response(200, CatalogueItemSchema)
    def patch(self, data, item_id):
        """Change a catalogue item; orders placed already keep the chain and tasks they started with."""
        item = services.get_item(item_id)
        check_if_match(item)
        return with_etag(services.save_item(data, item))

    @requires(ADMIN)
    @scope(ADMIN_SCOPE)
    @blp.response(204)
    def delete(self, item_id):
        """Delete an item never ordered (one that was is retired: active false)."""
        item = services.get_item(item_id)
        check_if_match(item)
        ordered = db.session.scalar(select(func.count()).where(CatalogueRequestItem.catalogue_item_id == item.id))
        if ordered:
            raise Conflict(f"{item.name} has been ordered {ordered} times: retire it (active false) instead.")
        db.session.delete(item)
        db.session.flush()


@blp.route("/catalogue-items/<int:item_id>/orders")
class ItemOrders(MethodView):
    @requires(*services.ORDERERS)
    @blp.arguments(ItemOrderSchema)
    @blp.response(201, OrderAnswerSchema)
    def post(self, data, item_id):
        """Order one item: a request ticket with its item, approvals and tasks."""
        services.get_item(item_id)  # the item the path names: 404 when there is none
        line = {"item_id": item_id, "fields": data.get("fields")}
        ticket = services.place_order([line], current_user(), data.get("requested_for_id"), data.get("note", ""))
        return services.order_answer(ticket)


@blp.route("/catalogue-orders")
class Orders(MethodView):
    @requires(*ALL_ROLES)
    @blp.response(200, OrderAnswerSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """Orders placed from the catalogue (requesters: their own), newest first."""
        tickets = paginate_select(services.orders_of(current_user()), pagination_parameters)
        return [services.order_answer(ticket) for ticket in tickets]

    @requires(*services.ORDERERS)
    @blp.arguments(OrderSchema)
    @blp.response(201, OrderAnswerSchema)
    def post(self, data):
        """Order several items at once: one request ticket, one request item each."""
        ticket = services.place_order(data["items"], current_user(), data.get("requested_for_id"), data["note"])
        return services.order_answer(ticket)


@blp.route("/catalogue-orders/<int:ticket_id>")
class OrderById(MethodView):
    @requires(*ALL_ROLES)
    @blp.response(200, OrderAnswerSchema)
    def get(self, ticket_id):
        """One order and its progress: approvals decided and open, tasks done and open."""
        return services.order_answer(services.get_order(ticket_id, current_user()))


@blp.route("/catalogue-request-items/<int:request_item_id>")
class RequestItemById(MethodView):
    @requires(*ALL_ROLES)
    @blp.response(200, RequestItemSchema)
    def get(self, request_item_id):
        """One ordered item, with its approvals and tasks."""
        return services.get_request_item(request_item_id, current_user())

    @requires(*WORKERS)
    @blp.arguments(RequestItemFieldsSchema)
    @blp.response(200, RequestItemSchema)
    def patch(self, data, request_item_id):
        """Correct an ordered item's form values (checked as on ordering) until it is fulfilled."""
        item = services.get_request_item(request_item_id, current_user())
        return services.update_item_fields(item, data["fields"], current_user())


@blp.route("/catalogue-approvals")
class Approvals(MethodView):
    @requires(*services.APPROVERS)
    @blp.arguments(ApprovalQuerySchema, location="query")
    @blp.response(200, CatalogueApprovalSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The approval steps waiting for the caller's decision (``state``: others the caller is in)."""
        user = current_user()
        state = args.get("state", "open")
        if state == "open":
            return _page_of(services.my_open_approvals(user), pagination_parameters)
        return paginate_select(services.approvals_for(user, state=state), pagination_parameters)


@blp.route("/catalogue-approvals/<int:step_id>")
class ApprovalById(MethodView):
    @requires(*services.APPROVERS)
    @blp.response(200, CatalogueApprovalSchema)
    def get(self, step_id):
        """One approval step, with the decisions taken."""
        return services.get_step(step_id, current_user())


@blp.route("/catalogue-approvals/<int:step_id>/decisions")
class ApprovalDecisions(MethodView):
    @requires(*services.APPROVERS)
    @blp.arguments(DecisionSchema)
    @blp.response(201, CatalogueApprovalSchema)
    def post(self, data, step_id):
        """Approve or reject: a rejection rejects the order; the last approval starts fulfilment."""
        user = current_user()
        step = services.get_step(step_id, user)
        return services.decide(step, data["decision"], data["comment"], user)


@blp.route("/catalogue-tasks")
class Tasks(MethodView):
    @requires(*WORKERS)
    @blp.arguments(TaskQuerySchema, location="query")
    @blp.response(200, CatalogueTaskAnswerSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """Fulfilment tasks (default: the open ones), oldest first."""
        stmt = services.tasks_for(
            current_user(),
            state=args.get("state", "open"),
            team_id=args.get("team_id"),
            mine=args.get("mine", False),
            ticket_id=args.get("ticket_id"),
        )
        return paginate_select(stmt, pagination_parameters)


@blp.route("/catalogue-tasks/<int:task_id>")
class TaskById(MethodView):
    @requires(*WORKERS)
    @blp.response(200, CatalogueTaskAnswerSchema)
    def get(self, task_id):
        """One fulfilment task."""
        return with_etag(services.get_task(task_id))


@blp.route("/catalogue-tasks/<int:task_id>/complete")
class TaskComplete(MethodView):
    @requires(*WORKERS)
    @blp.arguments(TaskCompleteSchema)
    @blp.response(200, CatalogueTaskAnswerSchema)
    def post(self, data, task_id):
        """Complete an open task (a delivering one deploys a CI from stock to the requester)."""
        task = services.get_task(task_id)
        return services.complete_task(task, current_user(), data["note"], data.get("ci_id"))
