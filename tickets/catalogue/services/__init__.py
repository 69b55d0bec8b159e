"""The service catalogue's rules: defining items, ordering them, deciding approvals, working the
fulfilment tasks. Every write goes through here (routes, pages and tests call these); one module per
section, re-exported here."""

from tickets.catalogue.services.approvals import (
    approvals_for,
    decide,
    decisions_of,
    get_step,
    my_open_approvals,
)
from tickets.catalogue.services.fulfilment import (
    DONE_ITEM_STATES,
    check_open,
    complete_task,
    get_task,
    may_work,
    request_items,
    stock_of,
    tasks_for,
)
from tickets.catalogue.services.items import (
    APPROVERS,
    MAX_FORM_FIELDS,
    MAX_LINES,
    MAX_STEPS,
    MAX_TASKS,
    ORDERERS,
    check_form_values,
    form_fields,
    get_item,
    items,
    may_order,
    orderable_items,
    save_item,
)
from tickets.catalogue.services.orders import (
    get_order,
    get_request_item,
    manager_of,
    order_answer,
    order_stage,
    orders_of,
    place_order,
    update_item_fields,
)

__all__ = [
    "APPROVERS", "DONE_ITEM_STATES", "MAX_FORM_FIELDS", "MAX_LINES", "MAX_STEPS", "MAX_TASKS", "ORDERERS",
    "approvals_for", "check_form_values", "check_open", "complete_task", "decide", "decisions_of", "form_fields",
    "get_item", "get_order", "get_request_item", "get_step", "get_task", "items", "manager_of", "may_order",
    "may_work", "my_open_approvals", "order_answer", "order_stage", "orderable_items", "orders_of", "place_order",
    "request_items", "save_item", "stock_of", "tasks_for", "update_item_fields",
]  # fmt: skip
