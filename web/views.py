"""Saved views on the CI and ticket lists: open one (the list with its filters and sort), save what
the list shows under a name (private, or for a team of yours), delete one of yours. The rules are
integrations.views.services' (the API's): filters the list would refuse are refused here too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _

from cairn.auth.models import Team
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import DomainError
from integrations.views import services
from integrations.views.models import RESOURCES
from integrations.views.schemas import SavedViewWriteSchema
from web.blueprint import bp
from web.forms import flash_refusal, form_int, load
from web.shell import STAFF

LISTS = {"cis": "web.cis", "tickets": "web.tickets"}
FILTER_PREFIX = "f_"
# The ticket list names its assignee filter "assignee" (me, none or an id); the API "assignee_id".
WEB_NAMES = {"tickets": {"assignee_id": "assignee"}}


@dataclass
class ViewsBar:
    """What a list's views bar shows: the list's filters as the API takes them (what "save" saves),
    the filters the list's form has no field for (``extra``, each with ``remove_url(name)`` to drop
    it), and, read only when the whole page is drawn (not for a filter fragment), the views the user
    sees, the one open and the user's teams to share with."""

    resource: str
    filters: dict
    sort: str
    extra: dict
    remove_url: Callable[[str], str]

    @cached_property
    def views(self) -> list:
        return services.list_views(g.user, self.resource)

    @cached_property
    def teams(self) -> list:
        return list(g.user.teams)

    @cached_property
    def open_view(self) -> int | None:
        return form_int(request.args.get("view"))


def views_context(resource: str, filters: dict, sort: str, extra: dict, remove_url) -> ViewsBar:
    """The views bar of a list (see ViewsBar); blank filters left out."""
    kept = {key: value for key, value in filters.items() if value not in ("", None)}
    return ViewsBar(resource, kept, sort, extra, remove_url)


def _list_url(resource: str, filters: dict, sort: str, view_id: int | None = None) -> str:
    names = WEB_NAMES.get(resource, {})
    args = {names.get(key, key): value for key, value in filters.items()}
    if sort:
        args["sort"] = sort
    if resource == "tickets" and "open" not in args:
        args.setdefault("queue", "all")  # the view's filters alone, not the default open queue
    return url_for(LISTS[resource], view=view_id, **args)


@bp.get("/views/<int:view_id>")
@page(*STAFF)
def open_view(view_id: int):
    """The list with the view's filters and sort."""
    view = services.get_view(view_id, g.user)
    return redirect(_list_url(view.resource, view.filters, view.sort, view.id))


@bp.post("/views")
@page(*STAFF)
def save_view():
    resource = request.form.get("resource") if request.form.get("resource") in RESOURCES else "cis"
    filters = {
        key[len(FILTER_PREFIX) :]: value
        for key, value in request.form.items()
        if key.startswith(FILTER_PREFIX) and value.strip()
    }
    data = {"name": (request.form.get("name") or "").strip(), "resource": resource, "filters": filters}
    if (request.form.get("sort") or "").strip():
        data["sort"] = request.form["sort"].strip()
    team = form_int(request.form.get("shared_with_team_id"))
    if team is not None:
        data["shared_with_team_id"] = team
    try:
        view = services.create_view(load(SavedViewWriteSchema(), data), g.user)
    except DomainError as error:
        flash_refusal(error)
        return redirect(_list_url(resource, filters, data.get("sort", "")))
    db.session.commit()
    shared = db.session.get(Team, view.shared_with_team_id) if view.shared_with_team_id else None
    if shared is not None:
        flash(_("View “%(name)s” saved and shared with %(team)s.", name=view.name, team=shared.name), "success")
    else:
        flash(_("View “%(name)s” saved.", name=view.name), "success")
    return redirect(url_for("web.open_view", view_id=view.id))


@bp.post("/views/<int:view_id>/delete")
@page(*STAFF)
def delete_view(view_id: int):
    view = services.get_view(view_id, g.user)
    resource, name = view.resource, view.name
    try:
        services.delete_view(view, g.user)
    except DomainError as error:
        flash_refusal(error)
        return redirect(url_for("web.open_view", view_id=view_id))
    db.session.commit()
    flash(_("View “%(name)s” deleted.", name=name), "success")
    return redirect(url_for(LISTS[resource]))
