"""The global search box: typeahead suggestions and the results page (integrations.search)."""

from __future__ import annotations

from flask import g, redirect, render_template, request, url_for

from cairn.auth.sessions import page
from cairn.errors import Invalid
from integrations.search.services import SEARCHED
from integrations.search.services import search as run_search
from web.blueprint import bp
from web.shell import STAFF

SUGGESTIONS_PER_GROUP = 5
RESULTS_PER_GROUP = 25
# Where a hit of each type opens; a type without a page yet is listed without a link.
TARGETS = {"ci": ("web.ci", "ci_id"), "ticket": ("web.ticket", "ticket_id")}


def link(item) -> str | None:
    """The page a hit (or the exact match) opens, if its type has one."""
    target = TARGETS.get(item.type)
    return url_for(target[0], **{target[1]: item.id}) if target else None


def _answer(q: str, limit: int):
    if len(q.strip()) < 2:
        return None, None
    try:
        return run_search(q, g.user, SEARCHED, limit), None
    except Invalid as error:
        return None, error.detail


@bp.get("/search")
@page(*STAFF)
def search():
    q = (request.args.get("q") or "")[:200]
    answer, problem = _answer(q, RESULTS_PER_GROUP)
    if answer and answer.exact and request.args.get("all") is None:
        destination = link(answer.exact)
        if destination:
            return redirect(destination)
    return render_template("search/results.html", q=q, answer=answer, problem=problem, link=link)


@bp.get("/search/suggest")
@page(*STAFF)
def search_suggest():
    q = (request.args.get("q") or "")[:200]
    answer, _problem = _answer(q, SUGGESTIONS_PER_GROUP)
    return render_template("search/suggestions.html", q=q, answer=answer, link=link)
