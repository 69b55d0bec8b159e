"""The knowledge base's pages: for staff, the list with search, an article, writing one (with a
preview), its state moves and past versions; on a ticket's page, the suggestions and "resolve with
this article" (a fragment the page loads); for requesters, the portal's help articles and the
suggestions on the new-ticket form. Every page calls tickets.knowledge.services, as the API does."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from cairn.auth import roles
from cairn.auth.sessions import page
from cairn.db import db
from cairn.errors import Conflict, DomainError, Invalid
from cmdb.classes import REGISTRY
from cmdb.models import ConfigurationItem
from cmdb.services import visible_cis
from tickets import categories
from tickets import services as tickets
from tickets.knowledge import render, search, services
from tickets.knowledge.models import STATES
from tickets.knowledge.schemas import ArticleSchema, ArticleUpdateSchema
from tickets.models import Ticket, TicketCategory
from web.blueprint import bp
from web.forms import field_errors, form_int, is_number, keep_errors, load, present
from web.shell import STAFF

READERS = STAFF
WRITERS = tuple(r for r in STAFF if r in services.WRITERS)
PORTAL = (roles.REQUESTER,)
PAGE_SIZE = 25
STATE_LABELS = {"draft": _l("Draft"), "review": _l("In review"), "published": _l("Published"), "retired": _l("Retired")}
MOVE_LABELS = {
    "review": _l("Send to review"),
    "published": _l("Publish"),
    "retired": _l("Retire"),
    "draft": _l("Back to draft"),
}
VISIBILITY_LABELS = {"agents": _l("Agents only"), "everyone": _l("Requesters too")}
REASON_LABELS = {
    "words": _l("its words"),
    "ci": _l("this CI"),
    "ci_class": _l("this kind of CI"),
    "category": _l("this category"),
}
RESOLVABLE = tuple(r for r in STAFF if r in (roles.ADMIN, roles.AGENT, roles.CHANGE_MANAGER))


def _page_number() -> int:
    return max(1, min(request.args.get("page", 1, type=int) or 1, 10_000))


def _listed(filters: dict, page_number: int):
    stmt = services.list_articles(filters, g.user)
    rows = list(db.session.scalars(stmt.offset((page_number - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _common() -> dict:
    return {"state_labels": STATE_LABELS, "visibility_labels": VISIBILITY_LABELS, "reason_labels": REASON_LABELS}


# ---------------------------------------------------------------------------------------------
# Staff: list, read, write


@bp.get("/knowledge")
@page(*READERS)
def knowledge():
    q = (request.args.get("q") or "").strip()
    state = request.args.get("state") or ""
    filters: dict = {}
    if state in STATES:
        filters["state"] = [state]
    articles, more, error = [], False, None
    page_number = _page_number()
    try:
        if q:
            filters["q"] = q
        articles, more = _listed(filters, page_number)
    except Invalid as refused:
        error = refused.errors.get("q", [refused.detail])[0] if refused.errors else refused.detail
    return render_template(
        "knowledge/list.html",
        articles=articles,
        more=more,
        q=q,
        state=state,
        states=STATES,
        error=error,
        page_number=page_number,
        can_write=g.user.role in WRITERS,
        breadcrumbs=[(_("Knowledge"), None)],
        **_common(),
    ), (422 if error else 200)


def _form_data(form, *, update: bool) -> dict:
    """The form's fields as the API's body: links as lists (classes by name, CIs by asset tag or
    exact name, problems by number)."""
    data = present(form, "title", "body", "visibility")
    if not update:
        data.setdefault("body", "")
    if update and "body" not in data and "body" in form:
        data["body"] = ""
    data["ci_classes"] = [c for c in form.getlist("ci_classes") if c]
    category = form_int(form.get("category_id"))
    data["category_ids"] = [category] if category else []
    data["ci_ids"] = _named_cis(form.get("cis") or "")
    data["problem_ids"] = _named_problems(form.get("problems") or "")
    return data


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()][: services.MAX_LINKS]


def _named_cis(text: str) -> list[int]:
    found, unknown = [], []
    for name in _split(text):
        condition = or_(ConfigurationItem.asset_tag == name, func.lower(ConfigurationItem.name) == name.lower()[:200])
        if is_number(name) and len(name) < 10:
            condition = or_(condition, ConfigurationItem.id == int(name))
        ids = list(
            db.session.scalars(visible_cis(g.user).with_only_columns(ConfigurationItem.id).where(condition).limit(2))
        )
        if len(ids) == 1:
            found.append(ids[0])
        else:
            unknown.append(name[:60])
    if unknown:
        message = _("No single CI is called %(names)s.", names=", ".join(unknown[:5]))
        raise Invalid(message, errors={"cis": [message]})
    return found


def _named_problems(text: str) -> list[int]:
    found, unknown = [], []
    for number in _split(text):
        ticket_id = db.session.scalar(
            select(Ticket.id).where(Ticket.number == number.upper()[:10], Ticket.kind == "problem")
        )
        if ticket_id is None:
            unknown.append(number[:20])
        else:
            found.append(ticket_id)
    if unknown:
        message = _("No problem is numbered %(numbers)s.", numbers=", ".join(unknown[:5]))
        raise Invalid(message, errors={"problems": [message]})
    return found


def _edit_page(article=None, status: int = 200, form=None):
    if form is None and article is not None:
        form = {
            "title": article.title,
            "body": article.body,
            "visibility": article.visibility,
            "ci_classes": article.ci_classes,
            "category_id": str(article.category_ids[0]) if article.category_ids else "",
            "cis": ", ".join(_ci_labels(article.ci_ids)),
            "problems": ", ".join(_problem_numbers(article.problem_ids)),
        }
    elif form is not None:
        form = {**form.to_dict(), "ci_classes": form.getlist("ci_classes")}
    crumbs = [(_("Knowledge"), url_for("web.knowledge"))]
    if article is not None:
        crumbs.append((article.title, url_for("web.knowledge_article", article_id=article.id)))
    crumbs.append((_("Edit") if article else _("New article"), None))
    return render_template(
        "knowledge/edit.html",
        article=article,
        form=form or {"visibility": "agents", "ci_classes": []},
        errors=field_errors(),
        classes=sorted(REGISTRY.values(), key=lambda c: c.label),
        category_tree=categories.tree(active_only=True),
        breadcrumbs=crumbs,
        **_common(),
    ), status


def _ci_labels(ids) -> list[str]:
    if not ids:
        return []
    rows = db.session.execute(
        select(ConfigurationItem.id, ConfigurationItem.name, ConfigurationItem.asset_tag).where(
            ConfigurationItem.id.in_(ids)
        )
    )
    return [asset_tag or name for _id, name, asset_tag in rows]


def _category_labels(ids) -> list[str]:
    if not ids:
        return []
    return [categories.path_of(c) for c in db.session.scalars(select(TicketCategory).where(TicketCategory.id.in_(ids)))]


def _problem_numbers(ids) -> list[str]:
    return list(db.session.scalars(select(Ticket.number).where(Ticket.id.in_(ids)))) if ids else []


@bp.route("/knowledge/new", methods=["GET", "POST"])
@page(*WRITERS)
def knowledge_new():
    if request.method == "GET":
        return _edit_page()
    try:
        data = load(ArticleSchema(), _form_data(request.form, update=False))
        article = services.create_article(data, g.user)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _edit_page(None, error.status, request.form)
    flash(_("The article was saved as a draft."), "success")
    return redirect(url_for("web.knowledge_article", article_id=article.id))


@bp.route("/knowledge/<int:article_id>/edit", methods=["GET", "POST"])
@page(*WRITERS)
def knowledge_edit(article_id: int):
    article = services.get_article(article_id, g.user, for_update=request.method == "POST")
    if request.method == "GET":
        return _edit_page(article)
    try:
        sent = (request.form.get("version") or "").strip()
        if sent and sent != str(article.version):
            raise Conflict(_("Someone else changed this article since you opened it. Look at it again and retry."))
        data = load(ArticleUpdateSchema(), _form_data(request.form, update=True))
        services.update_article(article, data, g.user)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _edit_page(services.get_article(article_id, g.user), error.status, request.form)
    flash(_("Saved as version %(revision)d.", revision=article.revision), "success")
    return redirect(url_for("web.knowledge_article", article_id=article.id))


@bp.post("/knowledge/preview")
@page(*WRITERS)
def knowledge_preview():
    """The body as it will be shown (a fragment for the editor's preview button)."""
    body = (request.form.get("body") or "")[: services.MAX_BODY]
    return render_template("knowledge/_preview.html", html=render.to_html(body))


def _article_page(article, status: int = 200):
    moves = [to for to, allowed in services.STATE_MOVES[article.state].items() if g.user.role in allowed]
    return render_template(
        "knowledge/article.html",
        article=article,
        moves=moves,
        move_labels=MOVE_LABELS,
        versions=services.past_versions(article),
        ci_labels=_ci_labels(article.ci_ids),
        problems=list(
            db.session.execute(select(Ticket.id, Ticket.number, Ticket.title).where(Ticket.id.in_(article.problem_ids)))
        )
        if article.problem_ids
        else [],
        category_labels=_category_labels(article.category_ids),
        class_labels=[REGISTRY[c].label if c in REGISTRY else c for c in article.ci_classes],
        can_write=g.user.role in WRITERS
        and (article.state in ("draft", "review") or g.user.role in services.PUBLISHERS),
        breadcrumbs=[(_("Knowledge"), url_for("web.knowledge")), (article.title, None)],
        **_common(),
    ), status


@bp.get("/knowledge/<int:article_id>")
@page(*READERS)
def knowledge_article(article_id: int):
    # requesters read articles in the portal (/portal/knowledge/<id>)
    return _article_page(services.get_article(article_id, g.user))


@bp.post("/knowledge/<int:article_id>/state")
@page(*WRITERS)
def knowledge_move(article_id: int):
    article = services.get_article(article_id, g.user, for_update=True)
    to = request.form.get("to") or ""
    try:
        if to not in STATES:
            raise Invalid(_("Choose a state."), errors={"state": [_("Choose a state.")]})
        services.update_article(article, {"state": to}, g.user)
    except DomainError as error:
        db.session.rollback()
        keep_errors(error)
        return _article_page(services.get_article(article_id, g.user), error.status)
    flash(_("The article is now %(state)s.", state=STATE_LABELS[to]), "success")
    return redirect(url_for("web.knowledge_article", article_id=article_id))


@bp.get("/knowledge/<int:article_id>/versions/<int:revision>")
@page(*READERS)
def knowledge_version(article_id: int, revision: int):
    article = services.get_article(article_id, g.user)
    version = services.past_version(article, revision)
    return render_template(
        "knowledge/version.html",
        article=article,
        version=version,
        breadcrumbs=[
            (_("Knowledge"), url_for("web.knowledge")),
            (article.title, url_for("web.knowledge_article", article_id=article.id)),
            (_("Version %(revision)d", revision=revision), None),
        ],
        **_common(),
    )


# ---------------------------------------------------------------------------------------------
# On a ticket's page: suggestions, the resolution, "resolve with this article"


def _ticket_panel(ticket, status: int = 200):
    resolution = services.resolution_of(ticket)
    return render_template(
        "knowledge/_ticket_panel.html",
        ticket=ticket,
        resolution=resolution,
        suggestions=services.suggest_for_ticket(ticket, g.user),
        can_resolve=g.user.role in RESOLVABLE
        and ticket.kind in services.RESOLVABLE_KINDS
        and ticket.state not in ("closed", "canceled"),
        errors=field_errors(),
        **_common(),
    ), status


@bp.get("/tickets/<int:ticket_id>/knowledge")
@page(*READERS)
def ticket_knowledge(ticket_id: int):
    """The knowledge panel of a ticket's page, as a fragment (the page loads it)."""
    ticket = tickets.get_ticket(ticket_id, g.user)
    if request.headers.get("HX-Request") != "true":
        return redirect(url_for("web.ticket", ticket_id=ticket_id, _anchor="knowledge"))
    return _ticket_panel(ticket)


@bp.post("/tickets/<int:ticket_id>/knowledge/resolve")
@page(*RESOLVABLE)
def ticket_resolve_with_article(ticket_id: int):
    ticket = tickets.get_ticket(ticket_id, g.user, for_update=True)
    article_id = form_int(request.form.get("article_id")) or 0
    try:
        article = services.get_article(article_id, g.user)
        resolve = request.form.get("resolve") == "1" and ticket.state != "resolved"
        services.attach_resolution(ticket, article, g.user, resolve=resolve)
    except DomainError as error:
        db.session.rollback()
        flash(error.detail, "error")
        return redirect(url_for("web.ticket", ticket_id=ticket_id, _anchor="knowledge"))
    if resolve:
        flash(_("%(number)s is resolved with “%(title)s”.", number=ticket.number, title=article.title), "success")
    else:
        flash(
            _("“%(title)s” is recorded as the resolution of %(number)s.", title=article.title, number=ticket.number),
            "success",
        )
    return redirect(url_for("web.ticket", ticket_id=ticket_id, _anchor="knowledge"))


# ---------------------------------------------------------------------------------------------
# The requester portal


@bp.get("/portal/knowledge")
@page(*PORTAL)
def portal_knowledge():
    q = (request.args.get("q") or "").strip()
    page_number = _page_number()
    articles, more, error = [], False, None
    try:
        articles, more = _listed({"q": q} if q else {"sort": "-resolved_count"}, page_number)
    except Invalid as refused:
        error = refused.errors.get("q", [refused.detail])[0] if refused.errors else refused.detail
    return render_template(
        "knowledge/portal_list.html",
        articles=articles,
        more=more,
        q=q,
        error=error,
        page_number=page_number,
        **_common(),
    ), (422 if error else 200)


@bp.get("/portal/knowledge/<int:article_id>")
@page(*PORTAL)
def portal_knowledge_article(article_id: int):
    article = services.get_article(article_id, g.user)  # 404 unless published for everyone
    return render_template("knowledge/portal_article.html", article=article, **_common())


@bp.get("/portal/knowledge/suggest")
@page(*PORTAL)
def portal_knowledge_suggest():
    """Articles that may answer the ticket being written (a fragment of the new-ticket form)."""
    title = (request.args.get("title") or "")[:200]
    description = (request.args.get("description") or "")[:20_000]
    ci_id = form_int(request.args.get("ci_id"))
    category_id = form_int(request.args.get("category_id"))
    found = []
    if search.terms(f"{title} {description}", suggest=True) or ci_id or category_id:
        found = services.suggest(
            f"{title}\n{description}", g.user, ci_ids=[ci_id] if ci_id else [], category_id=category_id
        )
    return render_template("knowledge/_portal_suggestions.html", suggestions=found, **_common())
