"""Full-text search of knowledge articles, ranked, on both databases (indexes: migration 0028).

A query is cut into words (letters and digits; at most MAX_TERMS). ``match``: an article matches
when every word begins a word of its title or body (a prefix, so "print" finds "printer");
``any_word``: when one of them does (suggestions, from a ticket's text). Ranking:

- PostgreSQL: the table ``search_article`` (each article's tsvector: title weight A, body B, the
  'simple' configuration), kept by a trigger, GIN-indexed; ``ts_rank`` over the stored vector,
  normalised by the document's length (1: divided by 1 + log(length)).
- SQLite: the FTS5 table ``search_article`` (unicode61 words), ``bm25`` with the title ten times the
  body's weight.

Both put an article whose title holds the words above one whose body does, and one that says them
more often, in a shorter text, above one that says them once in passing. Visibility is the caller's
condition (services.article_visibility), applied in the same statement.
"""

from __future__ import annotations

import re

from sqlalchemy import Float, bindparam, column, func, literal_column, select, table

from cairn.db import db
from cairn.errors import Invalid
from tickets.knowledge.models import KnowledgeArticle

MAX_QUERY_LENGTH = 200
MAX_TERMS = 20
MAX_SUGGEST_TERMS = 12
MAX_TERM_LENGTH = 60
TITLE_WEIGHT = 10.0
WORD = re.compile(r"[^\W_]+")
# Words too common to say what a ticket is about (suggestions only; a typed search keeps them).
STOP_WORDS = frozenset(
    """a an and are as at be but by can cannot do does for from has have i in is it its me my no not of on or
    our please so that the their there this to was we were what when where which who why will with you your
    help issue problem ticket work working hello hi thanks""".split()  # noqa: SIM905
)


def terms(text: str | None, *, suggest: bool = False) -> list[str]:
    """The words searched for, lower case, each once, in order."""
    words = [w.lower()[:MAX_TERM_LENGTH] for w in WORD.findall(text or "")]
    if suggest:
        # the first words (the title's come first) say most of what a ticket is about
        words = [w for w in words if len(w) >= 3 and w not in STOP_WORDS and not w.isdigit()]
        return list(dict.fromkeys(words))[:MAX_SUGGEST_TERMS]
    return list(dict.fromkeys(words))[:MAX_TERMS]


def parse(q: str | None) -> list[str]:
    """The terms of a typed search; Invalid (422 naming ``q``) for one too long or without a word."""
    if q is not None and len(q) > MAX_QUERY_LENGTH:
        message = f"A search is at most {MAX_QUERY_LENGTH} characters long."
        raise Invalid(message, errors={"q": [message]})
    found = terms(q)
    if not found:
        message = "Type at least one word (letters or digits) to search."
        raise Invalid(message, errors={"q": [message]})
    return found


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def ranked(words: list[str], *, any_word: bool = False):
    """(a condition, the relevance: higher is better, the search table to join to knowledge_article)."""
    index = table("search_article", column("rowid"), column("document"))
    if _dialect() == "postgresql":
        quoted = [f"'{w}':*" for w in words]  # words are letters and digits only
        text = (" | " if any_word else " & ").join(quoted)
        query = func.to_tsquery(literal_column("'simple'"), bindparam("kb_query", text))
        return index.c.document.op("@@")(query), func.ts_rank(index.c.document, query, 1), index
    match = (" OR " if any_word else " ").join(f'"{w}"*' for w in words)
    condition = literal_column("search_article").op("MATCH")(bindparam("kb_query", match))
    relevance = -func.bm25(literal_column("search_article"), TITLE_WEIGHT, 1.0)
    return condition, relevance.cast(Float), index


def search(stmt, words: list[str], *, any_word: bool = False):
    """``stmt`` (a select of KnowledgeArticle) kept to the articles that match, best first, and the
    relevance as a labelled column ``relevance`` to add when wanted."""
    condition, relevance, index = ranked(words, any_word=any_word)
    stmt = stmt.join(index, index.c.rowid == KnowledgeArticle.id)
    return stmt.where(condition).order_by(relevance.desc(), KnowledgeArticle.id.desc()), relevance.label("relevance")


def top(words: list[str], visible, *, any_word: bool, limit: int) -> list[tuple[int, float]]:
    """(id, relevance) of the best ``limit`` articles that match and meet ``visible`` (None: all)."""
    stmt, relevance = search(select(KnowledgeArticle.id), words, any_word=any_word)
    if visible is not None:
        stmt = stmt.where(visible)
    return [(row[0], float(row[1])) for row in db.session.execute(stmt.add_columns(relevance).limit(limit))]
