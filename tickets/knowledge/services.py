"""The knowledge base's rules: who sees, writes and publishes articles, their states, links, versions,
suggestions for a ticket, and the article a ticket was resolved with.

Who may do what (by role; see README):
- read: staff (admin, agent, change manager, integration, auditor, asset manager) every article in
  every state; a requester only published articles whose visibility is ``everyone``;
- write (create, edit a draft or an article in review, send it to review or back to draft): admin,
  agent, change manager, integration;
- publish, retire, restore, and edit a published article (the change is live at once): admin and
  change manager, the desk's senior roles (ServiceNow's knowledge managers, GLPI's FAQ publishers);
- delete: admin, and only an article that resolved no ticket (retire it otherwise).

States: draft -> review -> published -> retired, with ``STATE_MOVES`` the legal moves (anything else
is 409). A retired article is read-only until it is moved back to draft.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select, update

from cairn.audit.models import ChangeLog
from cairn.auth.models import User
from cairn.auth.policy import restricted
from cairn.auth.roles import ADMIN, AGENT, CHANGE_MANAGER, INTEGRATION, STAFF_READERS
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Conflict, Forbidden, Invalid, NotFound
from cmdb.classes import get_class
from cmdb.models import ConfigurationItem
from cmdb.services import visible_ci_ids
from tickets import services as tickets
from tickets.knowledge import render, search
from tickets.knowledge.models import KnowledgeArticle, KnowledgeLink, KnowledgeResolution
from tickets.models import Ticket, TicketCategory, TicketCI

MAX_TITLE = 200
MAX_BODY = 100_000
MAX_LINKS = 100  # of each kind
WRITERS = (ADMIN, AGENT, CHANGE_MANAGER, INTEGRATION)
PUBLISHERS = (ADMIN, CHANGE_MANAGER)
READERS = STAFF_READERS
# state -> {to: who may move it there}
STATE_MOVES: dict[str, dict[str, tuple[str, ...]]] = {
    "draft": {"review": WRITERS, "published": PUBLISHERS},
    "review": {"draft": WRITERS, "published": PUBLISHERS},
    "published": {"retired": PUBLISHERS, "draft": PUBLISHERS},
    "retired": {"draft": PUBLISHERS, "published": PUBLISHERS},
}
RESOLVABLE_KINDS = ("incident", "request", "problem")
LINK_FIELDS = {"ci_ids": "ci", "ci_classes": "ci_class", "category_ids": "category", "problem_ids": "problem"}
SUGGESTIONS = 5
# What a suggestion gains from what the article is about (its words' relevance is 0 to 1).
LINK_WEIGHTS = {"ci": 1.0, "ci_class": 0.5, "category": 0.5}


# ---------------------------------------------------------------------------------------------
# Who sees what


def article_visibility(viewer: User | None):
    """The condition an article meets for ``viewer`` to see it, or None when it sees them all."""
    if viewer is None or viewer.role in READERS:
        return None
    if restricted(viewer):
        return (KnowledgeArticle.state == "published") & (KnowledgeArticle.visibility == "everyone")
    return KnowledgeArticle.id.is_(None)  # a role not named here sees none


def can_see(viewer: User | None, article: KnowledgeArticle | None) -> bool:
    if article is None:
        return False
    if viewer is None or viewer.role in READERS:
        return True
    return restricted(viewer) and article.state == "published" and article.visibility == "everyone"


def get_article(article_id: int, viewer: User | None, *, for_update: bool = False) -> KnowledgeArticle:
    """The article, or NotFound (the same whether it does not exist or may not be seen)."""
    article = None
    if 0 < article_id <= MAX_ID:
        lock = {"of": KnowledgeArticle} if for_update else None
        article = db.session.get(KnowledgeArticle, article_id, with_for_update=lock)
    if not can_see(viewer, article):
        raise NotFound(f"No knowledge article with id {article_id}.")
    return article


def list_articles(filters: dict, viewer: User | None):
    """A select of the articles ``viewer`` sees that meet ``filters``: best match first when ``q``
    is given, else the most recently changed first."""
    stmt = select(KnowledgeArticle)
    condition = article_visibility(viewer)
    if condition is not None:
        stmt = stmt.where(condition)
    if filters.get("state"):
        stmt = stmt.where(KnowledgeArticle.state.in_(filters["state"]))
    if filters.get("visibility"):
        stmt = stmt.where(KnowledgeArticle.visibility == filters["visibility"])
    for name, kind in (("ci_id", "ci"), ("ci_class", "ci_class"), ("category_id", "category"),
                       ("problem_id", "problem")):  # fmt: skip
        if filters.get(name) is not None:
            target = getattr(KnowledgeLink, KnowledgeLink.COLUMNS[kind])
            linked = select(KnowledgeLink.article_id).where(KnowledgeLink.kind == kind, target == filters[name])
            stmt = stmt.where(KnowledgeArticle.id.in_(linked))
    if filters.get("q") is not None:
        stmt, _relevance = search.search(stmt, search.parse(filters["q"]))
        return stmt
    order = {"-updated_at": KnowledgeArticle.updated_at.desc(), "title": func.lower(KnowledgeArticle.title),
             "-resolved_count": KnowledgeArticle.resolved_count.desc()}  # fmt: skip
    return stmt.order_by(order[filters.get("sort") or "-updated_at"], KnowledgeArticle.id.desc())


# ---------------------------------------------------------------------------------------------
# Writing


def _check_role(viewer: User | None, roles: tuple[str, ...], doing: str) -> None:
    if viewer is not None and viewer.role not in roles:
        raise Forbidden(f"The role {viewer.role!r} may not {doing}.")


def _check_move(article: KnowledgeArticle, to: str, viewer: User | None) -> None:
    moves = STATE_MOVES[article.state]
    if to not in moves:
        listed = ", ".join(moves)
        raise Conflict(f"A {article.state} article cannot move to {to}; allowed: {listed}.", allowed=list(moves))
    _check_role(viewer, moves[to], f"move an article to {to}")


def _check_body(data: dict) -> None:
    # The schema caps them too; services are called from the CLI and jobs as well.
    if "title" in data and not 0 < len(data["title"].strip()) <= MAX_TITLE:
        raise Invalid("A title is 1 to 200 characters.", errors={"title": [f"1 to {MAX_TITLE} characters."]})
    if "body" in data and len(data["body"]) > MAX_BODY:
        raise Invalid("The body is too long.", errors={"body": [f"At most {MAX_BODY} characters."]})


def create_article(data: dict, viewer: User | None) -> KnowledgeArticle:
    """A new article (a draft unless ``state`` says otherwise and the caller may publish)."""
    _check_role(viewer, WRITERS, "write knowledge articles")
    _check_body({"title": data.get("title", ""), **data})
    state = data.get("state", "draft")
    article = KnowledgeArticle(
        title=data["title"].strip(),
        body=data.get("body", ""),
        visibility=data.get("visibility", "agents"),
        state="draft",
        revision=1,
        resolved_count=0,
        author_id=viewer.id if viewer is not None else None,
    )
    article.body_html = render.to_html(article.body)
    if state != "draft":
        _check_move(article, state, viewer)
        _enter(article, state, viewer)
    _set_links(article, data, viewer)
    db.session.add(article)
    db.session.flush()
    return article


def update_article(article: KnowledgeArticle, data: dict, viewer: User | None) -> KnowledgeArticle:
    """Change an article's text, visibility, links or state (``state``: a move of STATE_MOVES)."""
    _check_role(viewer, WRITERS, "write knowledge articles")
    _check_body(data)
    state = data.get("state")
    editing = {k: v for k, v in data.items() if k != "state"}
    if editing:
        if article.state == "retired" and state != "draft":
            raise Conflict("A retired article is read-only: move it back to draft first.", allowed=["draft"])
        if article.state == "published" and state not in ("draft", "retired"):
            _check_role(viewer, PUBLISHERS, "edit a published article")
    if "title" in data:
        data["title"] = data["title"].strip()
    changed = any(k in data and data[k] != getattr(article, k) for k in ("title", "body"))
    for key in ("title", "body", "visibility"):
        if key in data:
            setattr(article, key, data[key])
    if changed:
        article.revision = (article.revision or 1) + 1
        article.body_html = render.to_html(article.body)
    if state is not None and state != article.state:
        _check_move(article, state, viewer)
        _enter(article, state, viewer)
    _set_links(article, data, viewer)
    db.session.flush()
    return article


def _enter(article: KnowledgeArticle, state: str, viewer: User | None) -> None:
    article.state = state
    if state == "published":
        article.published_at = utcnow()
        article.published_by_id = viewer.id if viewer is not None else None


def delete_article(article: KnowledgeArticle, viewer: User | None) -> None:
    _check_role(viewer, (ADMIN,), "delete knowledge articles")
    used = db.session.scalar(select(func.count()).where(KnowledgeResolution.article_id == article.id))
    if used:
        raise Conflict(f"This article resolved {used} tickets: retire it instead of deleting it.")
    db.session.delete(article)
    db.session.flush()


def _set_links(article: KnowledgeArticle, data: dict, viewer: User | None) -> None:
    """Make the article's links of each kind given in ``data`` exactly those listed."""
    for name, kind in LINK_FIELDS.items():
        if name not in data:
            continue
        wanted = list(dict.fromkeys(data[name] or []))
        if len(wanted) > MAX_LINKS:
            raise Invalid(f"At most {MAX_LINKS} links of a kind.", errors={name: [f"At most {MAX_LINKS}."]})
        _check_targets(name, kind, wanted, viewer)
        current = {link.target: link for link in article.links if link.kind == kind}
        for target, link in current.items():
            if target not in wanted:
                article.links.remove(link)
        column = KnowledgeLink.COLUMNS[kind]
        for target in wanted:
            if target not in current:
                article.links.append(KnowledgeLink(kind=kind, **{column: target}))


def _check_targets(name: str, kind: str, wanted: list, viewer: User | None) -> None:
    if not wanted:
        return
    if kind == "ci_class":
        unknown = [c for c in wanted if get_class(c) is None]
    elif kind == "ci":
        existing = set(db.session.scalars(select(ConfigurationItem.id).where(ConfigurationItem.id.in_(wanted))))
        known = existing & set(visible_ci_ids(viewer, existing))
        unknown = [i for i in wanted if i not in known]
    elif kind == "category":
        known = set(db.session.scalars(select(TicketCategory.id).where(TicketCategory.id.in_(wanted))))
        unknown = [i for i in wanted if i not in known]
    else:
        stmt = select(Ticket.id).where(Ticket.id.in_(wanted), Ticket.kind == "problem")
        known = set(db.session.scalars(stmt))
        unknown = [i for i in wanted if i not in known]
    if unknown:
        what = {"ci": "CI", "ci_class": "CI class", "category": "ticket category", "problem": "problem"}[kind]
        message = f"No {what} {', '.join(map(str, unknown[:5]))}."
        raise Invalid(message, errors={name: [message]})


# ---------------------------------------------------------------------------------------------
# Versions (from the change log)


@dataclass
class Version:
    revision: int
    title: str
    body: str
    at: Any
    actor: str
    state: str = ""

    @property
    def body_html(self) -> str:
        return render.to_html(self.body)


def past_versions(article: KnowledgeArticle) -> list[Version]:
    """Every version of the article's content, oldest first, rebuilt from its change-log rows."""
    rows = db.session.scalars(
        select(ChangeLog)
        .where(ChangeLog.object_type == KnowledgeArticle.audit_type(), ChangeLog.object_id == article.id)
        .order_by(ChangeLog.id)
    )
    fields: dict[str, Any] = {}
    versions: dict[int, Version] = {}
    for row in rows:
        changes = row.changes or {}
        for key, value in changes.items():
            if isinstance(value, list) and len(value) == 2:
                fields[key] = value[1]
        revision = int(fields.get("revision") or 1)
        if row.action == "create" or "revision" in changes or revision not in versions:
            versions[revision] = Version(revision, fields.get("title", ""), fields.get("body", ""), row.at, row.actor)
        versions[revision].state = fields.get("state", "")
    return [versions[n] for n in sorted(versions)]


def past_version(article: KnowledgeArticle, revision: int) -> Version:
    for version in past_versions(article):
        if version.revision == revision:
            return version
    raise NotFound(f"Article {article.id} has no version {revision}.")


# ---------------------------------------------------------------------------------------------
# Suggestions


@dataclass
class Suggestion:
    article: KnowledgeArticle
    score: float
    reasons: list[str] = field(default_factory=list)

    @property
    def excerpt(self) -> str:
        return self.article.excerpt


def suggest(text: str, viewer: User | None, *, ci_ids=(), category_id: int | None = None,
            limit: int = SUGGESTIONS, exclude_ids=()) -> list[Suggestion]:  # fmt: skip
    """Published articles the viewer may read that may answer a ticket with this text (its title and
    description), on these CIs, in this category: the words' relevance (0 to 1, by rank among the
    matches) plus LINK_WEIGHTS for an article about one of the CIs, their classes, the category."""
    visible = KnowledgeArticle.state == "published"
    condition = article_visibility(viewer)
    if condition is not None:
        visible = visible & condition
    scores: dict[int, float] = {}
    reasons: dict[int, list[str]] = {}
    words = search.terms(text, suggest=True)
    if words:
        pool = search.top(words, visible, any_word=True, limit=50)
        for position, (article_id, _relevance) in enumerate(pool):
            scores[article_id] = 1.0 - position / len(pool)
            reasons[article_id] = ["words"]
    ci_ids = sorted(visible_ci_ids(viewer, [i for i in ci_ids if 0 < i <= MAX_ID])) if ci_ids else []
    of_cis = select(ConfigurationItem.ci_class).where(ConfigurationItem.id.in_(ci_ids))
    classes = sorted(set(db.session.scalars(of_cis)))
    about = []
    if ci_ids:
        about.append((KnowledgeLink.kind == "ci") & KnowledgeLink.ci_id.in_(ci_ids))
    if classes:
        about.append((KnowledgeLink.kind == "ci_class") & KnowledgeLink.ci_class.in_(classes))
    if category_id:
        about.append((KnowledgeLink.kind == "category") & (KnowledgeLink.category_id == category_id))
    if about:
        stmt = (
            select(KnowledgeLink.article_id, KnowledgeLink.kind)
            .join(KnowledgeArticle, KnowledgeArticle.id == KnowledgeLink.article_id)
            .where(visible, or_(*about))
            .limit(500)
        )
        for article_id, kind in db.session.execute(stmt):
            scores[article_id] = scores.get(article_id, 0.0) + LINK_WEIGHTS[kind]
            reasons.setdefault(article_id, []).append(kind)
    for article_id in exclude_ids:
        scores.pop(article_id, None)
    best = sorted(scores, key=lambda i: (-scores[i], -i))[:limit]
    articles = {a.id: a for a in db.session.scalars(select(KnowledgeArticle).where(KnowledgeArticle.id.in_(best)))}
    return [
        Suggestion(articles[i], round(scores[i], 4), sorted(set(reasons[i]), key=["words", *LINK_WEIGHTS].index))
        for i in best
        if i in articles
    ]


def suggest_for_ticket(ticket: Ticket, viewer: User | None, limit: int = SUGGESTIONS) -> list[Suggestion]:
    ci_ids = db.session.scalars(
        select(TicketCI.ci_id).where(TicketCI.ticket_id == ticket.id, TicketCI.removed_at.is_(None))
    )
    resolution = resolution_of(ticket)
    return suggest(
        f"{ticket.title}\n{ticket.description or ''}",
        viewer,
        ci_ids=list(ci_ids),
        category_id=ticket.category_id,
        limit=limit,
        exclude_ids=[resolution.article_id] if resolution else [],
    )


# ---------------------------------------------------------------------------------------------
# The article a ticket was resolved with


def resolution_of(ticket: Ticket) -> KnowledgeResolution | None:
    return db.session.scalar(select(KnowledgeResolution).where(KnowledgeResolution.ticket_id == ticket.id))


def _count(article_id: int, delta: int) -> None:
    """Move an article's resolved count in the database (no lost update under concurrent writers)."""
    db.session.execute(
        update(KnowledgeArticle)
        .where(KnowledgeArticle.id == article_id)
        .values(resolved_count=KnowledgeArticle.resolved_count + delta)
        .execution_options(synchronize_session=False)
    )
    article = db.session.get(KnowledgeArticle, article_id)
    if article is not None:
        db.session.expire(article, ["resolved_count"])


def attach_resolution(ticket: Ticket, article: KnowledgeArticle, viewer: User | None, *, resolve: bool = False,
                      note: str | None = None, resolution_code: str = "fixed") -> KnowledgeResolution:  # fmt: skip
    """Record ``article`` as what resolved ``ticket`` (replacing another one); ``resolve`` also moves
    the ticket to resolved, with ``note`` (default: the article's title) as the resolution note."""
    if ticket.kind not in RESOLVABLE_KINDS:
        raise Conflict(f"A {ticket.kind} is not resolved by a knowledge article.")
    if article.state != "published":
        raise Conflict(f"Only a published article can resolve a ticket; this one is {article.state}.")
    if ticket.state in ("closed", "canceled"):
        raise Conflict(f"{ticket.number} is {ticket.state}.")
    current = resolution_of(ticket)
    if current is not None and current.article_id != article.id:
        _count(current.article_id, -1)
        current.article_id = article.id
        current.linked_by_id = viewer.id if viewer is not None else None
        _count(article.id, 1)
    elif current is None:
        current = KnowledgeResolution(
            ticket_id=ticket.id, article_id=article.id, linked_by_id=viewer.id if viewer is not None else None
        )
        db.session.add(current)
        _count(article.id, 1)
    db.session.flush()
    if resolve and ticket.state != "resolved":
        note = (note or "").strip() or f"Resolved with knowledge article KB{article.id}: {article.title}"
        tickets.transition(ticket, "resolved", {"note": note, "resolution_code": resolution_code}, viewer)
    return current


def detach_resolution(ticket: Ticket) -> None:
    current = resolution_of(ticket)
    if current is None:
        raise NotFound(f"{ticket.number} has no resolution article.")
    article_id = current.article_id
    db.session.delete(current)
    db.session.flush()
    _count(article_id, -1)


def search_hits(q: str | None, viewer: User | None, limit: int = 10) -> list[dict]:
    """For the global search's ``article`` group (integrations/search): the best ``limit`` articles
    ``viewer`` may read for ``q``, as ``{id, title, subtitle, url, score}`` (score 1 to 0 by rank)."""
    words = search.parse(q)
    found = search.top(words, article_visibility(viewer), any_word=False, limit=limit)
    articles = {
        a.id: a
        for a in db.session.scalars(select(KnowledgeArticle).where(KnowledgeArticle.id.in_([i for i, _ in found])))
    }
    return [
        {"id": i, "title": articles[i].title, "subtitle": f"Article · {articles[i].state}",
         "url": f"/knowledge/{i}", "score": round(1.0 - n / max(len(found), 1), 4)}
        for n, (i, _relevance) in enumerate(found)
        if i in articles
    ]  # fmt: skip
