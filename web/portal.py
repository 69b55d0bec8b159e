"""The requester portal: my tickets, raising an incident or a request against my own assets,
the public conversation on them."""

from __future__ import annotations

from flask import g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from cairn.auth import roles
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import DomainError
from cmdb.services import search_cis
from tickets import categories
from tickets.schemas import CommentWriteSchema, TicketCreateSchema
from tickets.services import add_comment, comments_of, create_ticket, get_ticket, search_tickets
from web.blueprint import bp
from web.forms import field_errors, form_int, keep_errors, load, present

PORTAL = (roles.REQUESTER,)
PAGE_SIZE = 25


def _my_assets():
    return list(db.session.scalars(search_cis({"assigned_to_id": g.user.id, "sort": ["name"]}, g.user).limit(200)))


@bp.get("/portal")
@page(*PORTAL)
def portal():
    page_number = max(1, request.args.get("page", 1, type=int) or 1)
    stmt = search_tickets({"requester_id": g.user.id, "sort": ["-updated_at"]}, g.user)
    rows = list(db.session.scalars(stmt.offset((page_number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return render_template(
        "portal/home.html",
        tickets=rows[:PAGE_SIZE],
        page_number=page_number,
        has_next=len(rows) > PAGE_SIZE,
        assets=_my_assets(),
    )


@bp.route("/portal/new", methods=["GET", "POST"])
@page(*PORTAL)
def portal_new():
    assets = _my_assets()
    form = request.form if request.method == "POST" else {"kind": request.args.get("kind", "incident")}
    if request.method == "POST":
        try:
            fields = present(form, "kind", "title", "description", ints=("urgency", "category_id"))
            data = load(TicketCreateSchema(), fields)
            ci_text = (form.get("ci_id") or "").strip()
            if ci_text:
                # only the requester's own assets are offered; create_ticket checks visibility again
                data["ci_ids"] = [form_int(ci_text) or 0]
            ticket = create_ticket(data, g.user)
        except DomainError as error:
            db.session.rollback()
            keep_errors(error)
        else:
            return redirect(url_for("web.portal_ticket", ticket_id=ticket.id))
    status = 422 if request.method == "POST" else 200
    # the active categories of the kinds a requester opens (tickets.categories.REQUESTER_KINDS)
    tree = {k: v for k, v in categories.tree(active_only=True).items() if k in categories.REQUESTER_KINDS}
    answer = render_template(
        "portal/new.html",
        form=form,
        assets=assets,
        category_tree=tree,
        kind_labels={"incident": _("Something is broken"), "request": _("I need something")},
        errors=field_errors(),
    )
    return answer, status


@bp.get("/portal/tickets/<int:ticket_id>")
@page(*PORTAL)
def portal_ticket(ticket_id: int):
    ticket = get_ticket(ticket_id, g.user)  # 404 for anybody else's ticket
    comments = list(db.session.scalars(comments_of(ticket, g.user)))
    return render_template("portal/ticket.html", ticket=ticket, comments=comments, errors=field_errors())


@bp.post("/portal/tickets/<int:ticket_id>/comments")
@page(*PORTAL)
def portal_comment(ticket_id: int):
    ticket = get_ticket(ticket_id, g.user)
    try:
        data = load(CommentWriteSchema(), {"body": request.form.get("body") or ""})
        add_comment(ticket, data["body"], False, g.user)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        ticket = get_ticket(ticket_id, g.user)
        comments = list(db.session.scalars(comments_of(ticket, g.user)))
        return render_template("portal/ticket.html", ticket=ticket, comments=comments, errors=field_errors()), 422
    return redirect(url_for("web.portal_ticket", ticket_id=ticket_id, _anchor="conversation"))
