"""Custom fields in the web desk: the admin pages that define them (list, create, edit, delete with
a confirmation when values would go), and what the CI and ticket pages use to show and edit the
values, grouped by each field's group. Every write goes through the services the API calls
(cmdb.custom_fields.services, cmdb.services.update_ci, tickets.services.update_ticket)."""

from __future__ import annotations

import json
import re
from itertools import groupby

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from cairn.auth import roles
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import Conflict, DomainError, Invalid
from cmdb.classes import REGISTRY
from cmdb.custom_fields import services
from cmdb.custom_fields.models import TYPES
from cmdb.custom_fields.registry import TICKET_KINDS, category_chain, category_kinds, current
from cmdb.custom_fields.schemas import CustomFieldUpdateSchema, CustomFieldWriteSchema
from tickets import workflow
from web.blueprint import bp
from web.forms import field_errors, keep_errors, load
from web.shell import STAFF

TYPE_LABELS = {
    "text": _l("Text"), "long_text": _l("Long text"), "integer": _l("Whole number"), "decimal": _l("Decimal number"),
    "date": _l("Date"), "datetime": _l("Date and time"), "boolean": _l("Yes / no"), "choice": _l("Choice"),
    "multi_choice": _l("Multiple choice"), "url": _l("Web address"), "email": _l("E-mail address"),
    "ip_address": _l("IP address"), "ci": _l("CI (id)"), "user": _l("User (id)"), "team": _l("Team (id)"),
}  # fmt: skip
_NUMBERS = ("integer", "ci", "user", "team")
# Who edits values on the pages: the staff who may write CIs (as web.cis's moves) or tickets (web.tickets).
CI_EDITORS = tuple(role for role in roles.CMDB_WRITERS if role in STAFF)
TICKET_EDITORS = tuple(role for role in STAFF if role in workflow.STAFF)


# ---------------------------------------------------------------------------------------------
# Values on the CI and ticket pages


def value_groups(
    target: str, scope: str, values: dict | None, categories: tuple[int, ...] = ()
) -> list[tuple[str, list[dict]]]:
    """The fields of a CI class or ticket kind (with a ticket's ``categories``, theirs too) with the
    object's values, as (group, fields) in the definitions' order (group, label)."""
    values = values or {}
    fields = [
        {
            "name": d.name, "label": d.label, "type": d.type, "help": d.help_text, "required": d.required,
            "choices": d.choices, "value": values.get(d.name), "group": d.group,
        }
        for d in current().fields_for(target, scope, categories).values()
    ]  # fmt: skip
    return [(group, list(items)) for group, items in groupby(fields, key=lambda f: f["group"])]


def form_values(target: str, scope: str, form, categories: tuple[int, ...] = ()) -> dict:
    """The values a page's form sent (``cf_<name>`` inputs), for ``custom_fields`` of a PATCH: an
    empty input removes the value; numbers and booleans typed, the rest as text (the check names
    what is wrong)."""
    values = {}
    for name, definition in current().fields_for(target, scope, categories).items():
        key = f"cf_{name}"
        if definition.type == "multi_choice":
            if f"{key}__sent" in form:
                values[name] = [c for c in form.getlist(key) if c in definition.choices] or None
            continue
        if key not in form:
            continue
        text = (form.get(key) or "").strip()
        values[name] = _typed(definition.type, text) if text else None
    return values


def _typed(kind: str, text: str):
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if kind in _NUMBERS and text.lstrip("-").isdigit() and len(text) < 18:
        return int(text)
    if kind == "decimal":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "datetime" and len(text) == 16:  # a datetime-local input: minutes, read as UTC
        return f"{text}:00Z"
    return text


# ---------------------------------------------------------------------------------------------
# cf_<name> filters on the CI and ticket lists (the API's list filters, shown as removable chips)

FILTER_KEY = re.compile(r"^cf_[a-z][a-z0-9_]{0,49}$")
MAX_LIST_FILTERS = 10
# The picker's two inputs: the field to add a filter on and the value (merged into the cf_ filters).
ADD_FIELD, ADD_VALUE = "add_field", "add_value"


def list_filter_args(args) -> tuple[dict[str, str], bool]:
    """The ``cf_<name>`` filters of a list's query string (trimmed, bounded), with the one the
    picker adds (``add_field`` and ``add_value``); and whether one was added."""
    found: dict[str, str] = {}
    for key in args:
        value = (args.get(key) or "").strip()[:200]
        if FILTER_KEY.match(key) and value and len(found) < MAX_LIST_FILTERS:
            found[key] = value
    key = f"cf_{(args.get(ADD_FIELD) or '').strip()[:50]}"
    value = (args.get(ADD_VALUE) or "").strip()[:200]
    added = bool(FILTER_KEY.match(key) and value)
    if added:
        found.pop(key, None)
        found[key] = value
        while len(found) > MAX_LIST_FILTERS:
            found.pop(next(iter(found)))
    return found, added


def _shown_value(definition, value) -> str:
    if definition is None:
        return str(value)
    if definition.type == "boolean":
        lowered = str(value).lower()
        return _("Yes") if lowered in ("true", "1", "yes") else _("No") if lowered in ("false", "0", "no") else value
    return str(value)


def filter_chips(filters: dict[str, str], errors: dict, sort: str, remove_url) -> list[dict]:
    """The chips of a list's ``cf_`` filters (label, value, the list's errors for it, the list
    without it) and of a ``cf_`` sort key."""
    by_name = current().by_name
    chips = []
    for key, value in filters.items():
        definition = by_name.get(key[3:])
        chips.append(
            {
                "key": key,
                "label": definition.label if definition else key[3:],
                "value": value,
                "shown": _shown_value(definition, value),
                "errors": [str(e) for e in errors.get(key, ())],
                "remove": remove_url(key),
                "sort": False,
            }
        )
    for key in [k for k in (sort or "").split(",") if k.lstrip("-").startswith("cf_")]:
        definition = by_name.get(key.lstrip("-")[3:])
        label = definition.label if definition else key.lstrip("-")[3:]
        chips.append(
            {
                "key": "sort",
                "label": _("sorted by"),
                "value": key,
                "shown": f"{label} {'▼' if key.startswith('-') else '▲'}",
                "errors": [str(e) for e in errors.get("sort", ())],
                "remove": remove_url("sort"),
                "sort": True,
            }
        )
    return chips


def picker_fields(target: str, scopes: list[str]) -> list[dict]:
    """The fields the list's picker offers: those of the list's classes (``ci``) or kinds
    (``ticket``, with every category field of those kinds) when it is filtered by some, else every
    field of CIs or tickets."""
    registry = current()
    if not scopes:
        chosen = registry.anywhere(target)
    elif target == "ci":
        chosen = {name: d for scope in scopes for name, d in registry.fields_for("ci", scope).items()}
    else:
        categories = [c for d in registry.definitions for c in d.ticket_categories]
        kinds = category_kinds(categories)
        chosen = {
            d.name: d
            for d in registry.definitions
            if set(d.ticket_kinds) & set(scopes) or any(kinds.get(c, ("",))[0] in scopes for c in d.ticket_categories)
        }
    return [
        {"name": d.name, "label": d.label, "type": TYPE_LABELS.get(d.type, d.type), "choices": d.choices}
        for d in registry.definitions
        if d.name in chosen
    ]


def list_columns(filters: dict[str, str], sort: str) -> list[dict]:
    """The custom fields a list shows as columns: those it is filtered or sorted by."""
    names = [key[3:] for key in filters]
    names += [k.lstrip("-")[3:] for k in (sort or "").split(",") if k.lstrip("-").startswith("cf_")]
    by_name = current().by_name
    return [
        {"name": name, "label": by_name[name].label, "type": by_name[name].type}
        for name in dict.fromkeys(names)
        if name in by_name
    ]


def cell(column: dict, values: dict | None):
    """A custom field value as a list's cell shows it."""
    value = (values or {}).get(column["name"])
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _refuse(error: DomainError) -> None:
    """Roll back and say on the page the form returns to why it was refused, field by field."""
    db.session.rollback()
    details = []
    for key, messages in (error.errors or {}).items():
        nested = messages.items() if isinstance(messages, dict) else [(key, messages)]
        for name, texts in nested:
            label = current().by_name[name].label if name in current().by_name else name
            details.append(f"{label}: {' '.join(map(str, texts if isinstance(texts, list) else [texts]))}")
    flash(" ".join([error.detail, *details]), "error")


# ---------------------------------------------------------------------------------------------
# The admin pages


def _category_choices() -> list[tuple[int, str]]:
    """Every ticket category as (id, "Kind: Parent > Child"), for the applies-to picker."""
    from tickets.categories import path_of, tree

    choices = []
    for kind, rows in tree().items():
        for category, children in rows:
            for row in (category, *children):
                choices.append((row.id, f"{kind.capitalize()}: {path_of(row)}"))
    return choices


def _crumbs(*items):
    return [(_("Admin"), url_for("web.admin")), *items]


def _render(template: str, status: int = 200, **context):
    return (
        render_template(
            template,
            errors=field_errors(),
            type_labels=TYPE_LABELS,
            types=TYPES,
            classes=sorted(REGISTRY),
            kinds=TICKET_KINDS,
            categories=_category_choices(),
            **context,
        ),
        status,
    )


def _list_page(status: int = 200, form=None):
    fields = list(db.session.scalars(services.definitions_select()))
    return _render(
        "admin/custom_fields.html",
        status,
        fields=fields,
        form=form or {"type": "text", "ci_classes": [], "ticket_kinds": [], "ticket_categories": []},
        category_paths=dict(_category_choices()),
        breadcrumbs=_crumbs((_("Custom fields"), None)),
    )


def _field_page(field, status: int = 200, form=None, holding: int | None = None):
    return _render(
        "admin/custom_field.html",
        status,
        field=field,
        form=form or _form_of(field),
        holding=holding,
        breadcrumbs=_crumbs((_("Custom fields"), url_for("web.admin_custom_fields")), (field.label, None)),
    )


def _form_of(field) -> dict:
    rules = field.validation or {}
    default = field.default
    if default is None:
        shown_default = ""
    elif isinstance(default, list):
        shown_default = ", ".join(default)
    else:
        shown_default = json.dumps(default) if isinstance(default, bool) else str(default)
    return {
        "name": field.name, "label": field.label, "type": field.type, "ci_classes": field.ci_classes,
        "ticket_kinds": field.ticket_kinds, "ticket_categories": field.ticket_categories or [],
        "required": field.required, "group": field.group_name,
        "help_text": field.help_text, "choices": "\n".join(field.choices or []), "default": shown_default,
        "min": rules.get("min", ""), "max": rules.get("max", ""), "regex": rules.get("regex", ""),
    }  # fmt: skip


def _body(form, kind: str, *, creating: bool) -> tuple[dict, dict]:
    """A definition's body from the admin form (as an API client sends it), and the form to show again."""
    shown = {
        key: (form.get(key) or "").strip()[:1001]
        for key in ("name", "label", "type", "group", "help_text", "choices", "default", "min", "max", "regex")
    }
    shown["ci_classes"] = [c[:40] for c in form.getlist("ci_classes")[:100]]
    shown["ticket_kinds"] = [k[:10] for k in form.getlist("ticket_kinds")[:4]]
    picked = form.getlist("ticket_categories")[:100]
    shown["ticket_categories"] = [int(c) for c in picked if c.isdigit() and len(c) < 10]
    shown["required"] = form.get("required") == "on"
    body = {
        "label": shown["label"],
        "applies_to": {
            "ci_classes": shown["ci_classes"],
            "ticket_kinds": shown["ticket_kinds"],
            "ticket_categories": shown["ticket_categories"],
        },
        "required": shown["required"],
        "group": shown["group"],
        "help_text": shown["help_text"],
        "choices": [line.strip() for line in shown["choices"].splitlines() if line.strip()],
        "validation": {},
    }
    if creating:
        body.update(name=shown["name"], type=shown["type"])
    for key in ("min", "max"):
        if shown[key]:
            try:
                body["validation"][key] = float(shown[key])
            except ValueError:
                raise Invalid(_("Some fields are invalid."), errors={key: [_("A number.")]}) from None
    if shown["regex"]:
        body["validation"]["regex"] = shown["regex"]
    text = shown["default"]
    if kind == "multi_choice":
        body["default"] = [c.strip() for c in text.split(",") if c.strip()] or None
    else:
        body["default"] = _typed(kind, text) if text else None
    return body, shown


@bp.get("/admin/custom-fields")
@page(roles.ADMIN)
def admin_custom_fields():
    return _list_page()


@bp.post("/admin/custom-fields")
@page(roles.ADMIN)
def admin_custom_field_create():
    shown = {}
    try:
        body, shown = _body(request.form, (request.form.get("type") or "").strip(), creating=True)
        field = services.create_definition(load(CustomFieldWriteSchema(), body))
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _list_page(error.status, form=shown or None)
    flash(_("The custom field %(name)s is added.", name=field.name), "success")
    return redirect(url_for("web.admin_custom_field", field_id=field.id))


@bp.get("/admin/custom-fields/<int:field_id>")
@page(roles.ADMIN)
def admin_custom_field(field_id: int):
    return _field_page(services.get_definition(field_id))


@bp.post("/admin/custom-fields/<int:field_id>")
@page(roles.ADMIN)
def admin_custom_field_update(field_id: int):
    field = services.get_definition(field_id, for_update=True)
    shown = {}
    force = request.form.get("force") == "true"
    try:
        body, shown = _body(request.form, field.type, creating=False)
        services.update_definition(field, load(CustomFieldUpdateSchema(), body), force=force)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        holding = error.extra.get("holding") if isinstance(error, Conflict) else None
        form = {**_form_of(field), **shown, "name": field.name, "type": field.type}
        return _field_page(services.get_definition(field_id), error.status, form=form, holding=holding)
    flash(_("The custom field %(name)s is saved.", name=field.name), "success")
    return redirect(url_for("web.admin_custom_field", field_id=field.id))


@bp.post("/admin/custom-fields/<int:field_id>/delete")
@page(roles.ADMIN)
def admin_custom_field_delete(field_id: int):
    field = services.get_definition(field_id, for_update=True)
    name = field.name
    try:
        services.delete_definition(field, force=request.form.get("force") == "true")
    except Conflict as error:
        db.session.rollback()
        return _render(
            "admin/custom_field_delete.html",
            409,
            field=services.get_definition(field_id),
            holding=error.extra.get("holding", 0),
            breadcrumbs=_crumbs((_("Custom fields"), url_for("web.admin_custom_fields")), (name, None)),
        )
    flash(_("The custom field %(name)s is deleted.", name=name), "success")
    return redirect(url_for("web.admin_custom_fields"))


# ---------------------------------------------------------------------------------------------
# Editing the values on a CI's or a ticket's page


def _stale(version_text: str | None, current_version: int) -> bool:
    version = (version_text or "").strip()
    return bool(version) and version != str(current_version)


@bp.post("/cis/<int:ci_id>/custom-fields")
@page(*CI_EDITORS)
def ci_custom_fields(ci_id: int):
    """Save a CI's custom field values through update_ci (the checks of PATCH /cis/{id})."""
    from cmdb.services import get_ci, update_ci

    found = get_ci(ci_id, g.user, for_update=True)
    try:
        if _stale(request.form.get("version"), found.version):
            raise Conflict(_("Somebody changed this CI since you opened it; look again and retry."))
        update_ci(found, {"custom_fields": form_values("ci", found.ci_class, request.form)})
    except DomainError as error:
        _refuse(error)
        return redirect(url_for("web.ci", ci_id=ci_id, _anchor="custom-fields"))
    flash(_("The custom fields of %(name)s are saved.", name=found.name), "success")
    return redirect(url_for("web.ci", ci_id=found.id, _anchor="custom-fields"))


@bp.post("/tickets/<int:ticket_id>/custom-fields")
@page(*TICKET_EDITORS)
def ticket_custom_fields(ticket_id: int):
    """Save a ticket's custom field values through update_ticket (the checks of PATCH /tickets/{id})."""
    from tickets.services import get_ticket, update_ticket

    ticket = get_ticket(ticket_id, g.user, for_update=True)
    try:
        if _stale(request.form.get("version"), ticket.version):
            raise Conflict(_("Somebody changed this ticket since you opened it; look again and retry."))
        chain = category_chain(ticket.category_id)
        update_ticket(ticket, {"custom_fields": form_values("ticket", ticket.kind, request.form, chain)}, g.user)
    except DomainError as error:
        _refuse(error)
        return redirect(url_for("web.ticket", ticket_id=ticket_id, _anchor="custom-fields"))
    flash(_("The custom fields of %(number)s are saved.", number=ticket.number), "success")
    return redirect(url_for("web.ticket", ticket_id=ticket.id, _anchor="custom-fields"))
