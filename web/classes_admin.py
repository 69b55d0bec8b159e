"""Administration of CI classes and ticket categories: the built-in and custom classes (add, edit,
delete a custom one), and the ticket categories as a tree per kind (add, edit, deactivate, delete
an unused one). Admins only; every write goes through the services the API calls
(cmdb.custom_classes, tickets.categories), so the rules and the change log are the API's."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from cairn.auth import roles
from cairn.auth.models import Team
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import DomainError
from cmdb import custom_classes
from cmdb.classes import CATEGORIES, REGISTRY
from cmdb.models import ConfigurationItem
from cmdb.schemas import CIClassUpdateSchema, CIClassWriteSchema
from relations import services as relations
from tickets import categories
from tickets.models import KINDS
from tickets.schemas import TicketCategoryUpdateSchema, TicketCategoryWriteSchema
from web.blueprint import bp
from web.forms import field_errors, flash_refusal, form_int, keep_errors, load

CLASS_FIELDS = ("name", "label", "parent", "category", "icon")
CATEGORY_FIELDS = ("name", "label", "kind")


def _render(template: str, status: int = 200, **context):
    return render_template(template, errors=field_errors(), **context), status


def _crumbs(*items):
    return [(_("Admin"), url_for("web.admin")), *items]


def _failed(error: DomainError) -> None:
    db.session.rollback()
    keep_errors(error)


# ---------------------------------------------------------------------------------------------
# CI classes


def _class_form(form) -> dict:
    """What a class form sent, as the API's body: empty optional fields left out (the parent's)."""
    data = {k: (form.get(k) or "").strip()[:200] for k in CLASS_FIELDS if (form.get(k) or "").strip()}
    own = bool(form.get("own_relationship_types"))  # unticked: the parent's rules
    data["relationship_types"] = [t[:40] for t in form.getlist("relationship_types")[:100]] if own else None
    return data


def _classes_page(status: int = 200, form=None):
    counts = dict(
        db.session.execute(select(ConfigurationItem.ci_class, func.count()).group_by(ConfigurationItem.ci_class))
        .tuples()
        .all()
    )
    return _render(
        "admin/ci_classes.html",
        status,
        classes=list(REGISTRY.values()),
        counts=counts,
        category_names=CATEGORIES,
        type_names=[t.name for t in relations.relationship_types()],
        cap=custom_classes.MAX_CUSTOM_CLASSES,
        form=form or {},
        breadcrumbs=_crumbs((_("CI classes"), None)),
    )


@bp.get("/admin/ci-classes")
@page(roles.ADMIN)
def admin_ci_classes():
    return _classes_page()


@bp.post("/admin/ci-classes")
@page(roles.ADMIN)
def admin_ci_class_create():
    data = _class_form(request.form)
    try:
        created = custom_classes.create_class(load(CIClassWriteSchema(), data))
    except DomainError as error:
        _failed(error)
        return _classes_page(error.status, form=data)
    flash(_("The class %(name)s is added; CIs of it can be created now.", name=created.name), "success")
    return redirect(url_for("web.admin_ci_class", name=created.name))


def _class_page(name: str, status: int = 200, form=None):
    found = custom_classes.get_class_or_404(name)
    in_use = db.session.scalar(select(func.count()).where(ConfigurationItem.ci_class == name))
    current = {
        "label": found.label,
        "parent": found.parent or "",
        "category": found.category,
        "icon": found.icon,
        "relationship_types": found.relationship_types,
    }
    return _render(
        "admin/ci_class.html",
        status,
        cls=found,
        in_use=in_use,
        subclasses=[c.name for c in REGISTRY.values() if c.parent == name],
        parents=[c for c in REGISTRY.values() if c.name != name],
        category_names=CATEGORIES,
        type_names=[t.name for t in relations.relationship_types()],
        form=form or current,
        breadcrumbs=_crumbs((_("CI classes"), url_for("web.admin_ci_classes")), (found.label, None)),
    )


@bp.get("/admin/ci-classes/<string:name>")
@page(roles.ADMIN)
def admin_ci_class(name: str):
    return _class_page(name)  # an unknown name: NotFound, the desk's 404 page


@bp.post("/admin/ci-classes/<string:name>")
@page(roles.ADMIN)
def admin_ci_class_update(name: str):
    data = _class_form(request.form)
    data.pop("name", None)
    try:
        custom_classes.update_class(name, load(CIClassUpdateSchema(), data))
    except DomainError as error:
        if error.status == 404:
            raise
        _failed(error)
        return _class_page(name, error.status, form={**data, "relationship_types": data.get("relationship_types")})
    flash(_("The class %(name)s is saved.", name=name), "success")
    return redirect(url_for("web.admin_ci_class", name=name))


@bp.post("/admin/ci-classes/<string:name>/delete")
@page(roles.ADMIN)
def admin_ci_class_delete(name: str):
    try:
        custom_classes.delete_class(name)
    except DomainError as error:
        if error.status == 404:
            raise
        flash_refusal(error)
        return redirect(url_for("web.admin_ci_class", name=name))
    flash(_("The class %(name)s is deleted.", name=name), "success")
    return redirect(url_for("web.admin_ci_classes"))


# ---------------------------------------------------------------------------------------------
# Ticket categories


def _category_form(form, *, create: bool) -> dict:
    data = {k: (form.get(k) or "").strip()[:200] for k in CATEGORY_FIELDS if create or k != "kind"}
    for key in ("parent_id", "default_team_id"):
        text = (form.get(key) or "").strip()
        data[key] = (form_int(text) or text[:20]) if text else None
    data["active"] = bool(form.get("active"))
    return data


def _teams() -> list[Team]:
    return list(db.session.scalars(select(Team).order_by(Team.name).limit(1000)))


def _categories_page(status: int = 200, form=None):
    tree = categories.tree()
    return _render(
        "admin/ticket_categories.html",
        status,
        tree=tree,
        kinds=KINDS,
        teams=_teams(),
        form=form or {"kind": request.args.get("kind") if request.args.get("kind") in KINDS else "incident"},
        cap=categories.MAX_CATEGORIES,
        breadcrumbs=_crumbs((_("Ticket categories"), None)),
    )


@bp.get("/admin/ticket-categories")
@page(roles.ADMIN)
def admin_ticket_categories():
    return _categories_page()


@bp.post("/admin/ticket-categories")
@page(roles.ADMIN)
def admin_ticket_category_create():
    data = _category_form(request.form, create=True)
    try:
        category = categories.create_category(load(TicketCategoryWriteSchema(), data))
    except DomainError as error:
        _failed(error)
        return _categories_page(error.status, form=data)
    flash(_("The category %(label)s is added.", label=categories.path_of(category)), "success")
    return redirect(url_for("web.admin_ticket_categories", kind=category.kind) + f"#kind-{category.kind}")


def _category_page(category_id: int, status: int = 200, form=None):
    category = categories.get_category(category_id)
    in_use = db.session.scalar(select(func.count()).select_from(_tickets_in(category)))
    tops = [c for c, _subs in categories.tree(category.kind)[category.kind] if c.id != category.id]
    current = {
        "name": category.name,
        "label": category.label,
        "parent_id": category.parent_id,
        "default_team_id": category.default_team_id,
        "active": category.active,
    }
    return _render(
        "admin/ticket_category.html",
        status,
        category=category,
        in_use=in_use,
        parents=tops,
        teams=_teams(),
        form=form or current,
        breadcrumbs=_crumbs(
            (_("Ticket categories"), url_for("web.admin_ticket_categories", kind=category.kind)),
            (categories.path_of(category), None),
        ),
    )


def _tickets_in(category):
    from tickets.models import Ticket

    return select(Ticket.id).where(Ticket.category_id == category.id).subquery()


@bp.get("/admin/ticket-categories/<int:category_id>")
@page(roles.ADMIN)
def admin_ticket_category(category_id: int):
    return _category_page(category_id)


@bp.post("/admin/ticket-categories/<int:category_id>")
@page(roles.ADMIN)
def admin_ticket_category_update(category_id: int):
    category = categories.get_category(category_id, for_update=True)
    data = _category_form(request.form, create=False)
    try:
        categories.update_category(category, load(TicketCategoryUpdateSchema(), data))
    except DomainError as error:
        _failed(error)
        return _category_page(category_id, error.status, form=data)
    flash(_("The category %(label)s is saved.", label=categories.path_of(category)), "success")
    return redirect(url_for("web.admin_ticket_category", category_id=category_id))


@bp.post("/admin/ticket-categories/<int:category_id>/delete")
@page(roles.ADMIN)
def admin_ticket_category_delete(category_id: int):
    category = categories.get_category(category_id, for_update=True)
    kind, label = category.kind, categories.path_of(category)
    try:
        categories.delete_category(category)
    except DomainError as error:
        flash_refusal(error)
        return redirect(url_for("web.admin_ticket_category", category_id=category_id))
    flash(_("The category %(label)s is deleted.", label=label), "success")
    return redirect(url_for("web.admin_ticket_categories", kind=kind))
