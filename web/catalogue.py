"""The service catalogue in the web desk: browsing and ordering (the portal), an order's progress,
the approvals waiting for me, the fulfilment tasks of my teams, and the admin page that defines
items. Every write goes through tickets.catalogue.services, as the API's."""

from __future__ import annotations

import json
from itertools import groupby

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from cairn.auth import roles
from cairn.auth.models import Team
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import DomainError, Invalid, NotFound
from cmdb.classes import REGISTRY
from cmdb.custom_fields.registry import current
from tickets.catalogue import services
from tickets.catalogue.models import APPROVAL_MODES
from tickets.catalogue.schemas import CatalogueItemSchema, CatalogueItemUpdateSchema, DecisionSchema
from tickets.models import Ticket
from web.blueprint import bp
from web.custom_fields import form_values
from web.forms import field_errors, flash_refusal, form_int, keep_errors, load
from web.shell import STAFF

ORDERERS = services.ORDERERS
WORKERS = tuple(r for r in STAFF if r != roles.AUDITOR)


# ---------------------------------------------------------------------------------------------
# Browsing and ordering


@bp.get("/portal/catalogue")
@page(*ORDERERS)
def catalogue_browse():
    items = services.orderable_items(g.user)
    q = (request.args.get("q") or "").strip().lower()[:200]
    if q:
        items = [i for i in items if q in i.name.lower() or q in (i.description or "").lower()]
    grouped = [(category, list(rows)) for category, rows in groupby(items, key=lambda i: i.category)]
    mine = db.session.scalars(services.orders_of(g.user).where(Ticket.requester_id == g.user.id).limit(10))
    answers = [services.order_answer(ticket) for ticket in mine]
    return render_template("catalogue/browse.html", grouped=grouped, q=q, orders=answers)


def _labels() -> dict[str, str]:
    """The labels of the form fields, by name."""
    return {d.name: d.label for d in current().fields_for("ticket", "request").values()}


def _form_groups(item, values: dict) -> list:
    fields = [
        {
            "name": d.name, "label": d.label, "type": d.type, "help": d.help_text, "required": required,
            "choices": d.choices, "value": values.get(d.name),
        }
        for d, required in services.form_fields(item)
    ]  # fmt: skip
    return [(_("What you need"), fields)] if fields else []


@bp.route("/portal/catalogue/<int:item_id>", methods=["GET", "POST"])
@page(*ORDERERS)
def catalogue_order(item_id: int):
    item = services.get_item(item_id)
    if not services.may_order(item, g.user):
        raise NotFound(f"No catalogue item with id {item_id}.")  # as for an unknown id
    values: dict = {}
    note = ""
    if request.method == "POST":
        note = (request.form.get("note") or "")[:2000]
        values = {k: v for k, v in form_values("ticket", "request", request.form).items() if v is not None}
        try:
            ticket = services.place_order([{"item_id": item.id, "fields": values}], g.user, None, note)
        except DomainError as error:
            db.session.rollback()
            keep_errors(_field_errors_of(error))
            item = services.get_item(item_id)
        else:
            flash(_("Your order %(number)s is placed.", number=ticket.number), "success")
            return redirect(url_for("web.catalogue_order_progress", ticket_id=ticket.id))
    answer = render_template(
        "catalogue/order.html", item=item, groups=_form_groups(item, values), note=note, errors=field_errors()
    )
    return answer, 422 if request.method == "POST" else 200


def _field_errors_of(error: DomainError) -> DomainError:
    """An order's errors (``items.0.fields.<name>``) as the form's inputs are named (``cf_<name>``)."""
    line = ((error.errors or {}).get("items") or {}).get("0") or {}
    if isinstance(line, dict) and ("fields" in line or "approval_steps" in line):
        mapped = {f"cf_{name}": messages for name, messages in (line.get("fields") or {}).items()}
        if line.get("approval_steps"):
            mapped["approval"] = line["approval_steps"]
        return Invalid(error.detail, errors=mapped)
    return error


@bp.get("/portal/orders/<int:ticket_id>")
@page(*roles.ALL_ROLES)
def catalogue_order_progress(ticket_id: int):
    ticket = services.get_order(ticket_id, g.user)
    return render_template("catalogue/progress.html", order=services.order_answer(ticket), labels=_labels())


# ---------------------------------------------------------------------------------------------
# Approvals


@bp.get("/approvals")
@page(*services.APPROVERS)
def catalogue_approvals():
    steps = services.my_open_approvals(g.user)
    return render_template("catalogue/approvals.html", steps=steps, labels=_labels(), errors=field_errors())


@bp.post("/approvals/<int:step_id>")
@page(*services.APPROVERS)
def catalogue_decide(step_id: int):
    step = services.get_step(step_id, g.user)
    try:
        data = load(
            DecisionSchema(),
            {"decision": request.form.get("decision") or "", "comment": request.form.get("comment") or ""},
        )
        services.decide(step, data["decision"], data["comment"], g.user)
    except DomainError as error:
        flash_refusal(error)
    else:
        verb = _("approved") if data["decision"] == "approve" else _("rejected")
        flash(_("You %(verb)s %(number)s.", verb=verb, number=step.request_item.ticket.number), "success")
    return redirect(url_for("web.catalogue_approvals"))


# ---------------------------------------------------------------------------------------------
# Fulfilment tasks


@bp.get("/desk/fulfilment")
@page(*WORKERS)
def catalogue_tasks():
    everyone = request.args.get("all") == "1"
    tasks = list(db.session.scalars(services.tasks_for(g.user, mine=not everyone).limit(200)))
    stock = {cls: services.stock_of(cls) for cls in {t.delivers_ci_class for t in tasks if t.delivers_ci_class}}
    return render_template("catalogue/tasks.html", tasks=tasks, stock=stock, everyone=everyone)


@bp.post("/desk/fulfilment/<int:task_id>/complete")
@page(*WORKERS)
def catalogue_complete(task_id: int):
    task = services.get_task(task_id)
    try:
        ci_id = form_int(request.form.get("ci_id"))
        services.complete_task(task, g.user, (request.form.get("note") or "")[:2000], ci_id)
    except DomainError as error:
        flash_refusal(error)
    else:
        flash(_("Task %(title)s is done.", title=task.title), "success")
    return redirect(url_for("web.catalogue_tasks"))


# ---------------------------------------------------------------------------------------------
# Admin


@bp.get("/admin/catalogue")
@page(roles.ADMIN)
def catalogue_admin():
    items = list(db.session.scalars(services.items()))
    return render_template("catalogue/admin_list.html", items=items)


def _admin_context(item, form, errors):
    return {
        "item": item,
        "form": form,
        "errors": errors,
        "request_fields": list(current().fields_for("ticket", "request").values()),
        "teams": list(db.session.scalars(select(Team).order_by(Team.name))),
        "all_roles": roles.ALL_ROLES,
        "modes": APPROVAL_MODES,
        "ci_classes": sorted(REGISTRY),
    }


def _item_form(item) -> dict:
    """What the admin form shows for an item (its lists as JSON text)."""
    if item is None:
        return {"approval_steps": "[]", "tasks": "[]", "active": True, "approval_mode": "sequential", "form": {}}
    return {
        "name": item.name,
        "description": item.description,
        "category": item.category,
        "active": item.active,
        "approval_mode": item.approval_mode,
        "deliver_ci_class": item.deliver_ci_class or "",
        "form": {entry["field"]: bool(entry.get("required")) for entry in item.form or []},
        "roles": (item.audience or {}).get("roles") or [],
        "team_ids": (item.audience or {}).get("team_ids") or [],
        "approval_steps": json.dumps(item.approval_steps or [], indent=1),
        "tasks": json.dumps(item.tasks or [], indent=1),
    }


def _submitted(form) -> tuple[dict, dict]:
    """The admin form as the API's body, the form as typed (to show again), and JSON errors."""
    fields = form.getlist("form_field")
    shown = {
        "name": form.get("name", ""),
        "description": form.get("description", ""),
        "category": form.get("category", ""),
        "active": form.get("active") == "1",
        "approval_mode": form.get("approval_mode", "sequential"),
        "deliver_ci_class": form.get("deliver_ci_class", ""),
        "form": {name: form.get(f"required_{name}") == "1" for name in fields},
        "roles": form.getlist("roles"),
        "team_ids": [form_int(t) for t in form.getlist("team_ids") if form_int(t)],
        "approval_steps": form.get("approval_steps", "[]"),
        "tasks": form.get("tasks", "[]"),
    }
    errors = {}
    body = {
        "name": shown["name"].strip(),
        "description": shown["description"],
        "category": shown["category"].strip(),
        "active": shown["active"],
        "approval_mode": shown["approval_mode"],
        "deliver_ci_class": shown["deliver_ci_class"] or None,
        "form": [{"field": name, "required": required} for name, required in shown["form"].items()],
        "audience": {"roles": shown["roles"], "team_ids": shown["team_ids"]},
    }
    for key in ("approval_steps", "tasks"):
        try:
            body[key] = json.loads(shown[key] or "[]")
        except ValueError:
            errors[key] = [_("Not valid JSON: a list of objects, as in the example.")]
    return body, shown, errors


def _flat(errors: dict) -> dict[str, list[str]]:
    """Nested field errors (``tasks.0.team_id``) as lines under their top-level field."""

    def lines(value, path=()):
        if isinstance(value, dict):
            return [line for key, inner in value.items() for line in lines(inner, (*path, str(key)))]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            prefix = ".".join(path)
            return [f"{prefix}: {v}" if prefix else v for v in value]
        return [str(value)]

    return {key: lines(value) for key, value in errors.items()}


@bp.route("/admin/catalogue/new", methods=["GET", "POST"])
@bp.route("/admin/catalogue/<int:item_id>", methods=["GET", "POST"])
@page(roles.ADMIN)
def catalogue_admin_item(item_id: int | None = None):
    item = services.get_item(item_id) if item_id is not None else None
    if request.method == "GET":
        return render_template("catalogue/admin_item.html", **_admin_context(item, _item_form(item), {}))
    body, shown, errors = _submitted(request.form)
    try:
        if errors:
            raise Invalid("Some fields are invalid.", errors=errors)
        data = load(CatalogueItemSchema() if item is None else CatalogueItemUpdateSchema(), body)
        saved = services.save_item(data, item)
    except DomainError as error:
        db.session.rollback()
        keep_errors(Invalid(error.detail, errors=_flat(error.errors or {})) if error.errors else error)
        item = services.get_item(item_id) if item_id is not None else None
        return render_template("catalogue/admin_item.html", **_admin_context(item, shown, field_errors())), 422
    flash(_("Catalogue item %(name)s saved.", name=saved.name), "success")
    return redirect(url_for("web.catalogue_admin"))
