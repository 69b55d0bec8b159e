"""Knowledge articles, what they are about (CIs, CI classes, categories, problems) and the tickets
they resolved.

An article's Markdown ``body`` is the source; ``body_html`` is its rendering, sanitised by nh3, kept
so that reading an article costs no rendering. ``revision`` counts the versions of its content
(title and body): every save that changes them adds one, and the change log (the ``Audited``
mixin) keeps each version's diff, from which a past version is rebuilt (services.past_versions).
``version`` is the row's optimistic-lock counter (the ETag), which moves on every write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cairn.audit.mixin import Audited
from cairn.db import TimestampedModel
from tickets.knowledge import render

STATES = ("draft", "review", "published", "retired")
VISIBILITIES = ("agents", "everyone")
LINK_KINDS = ("ci", "ci_class", "category", "problem")


class KnowledgeArticle(Audited, TimestampedModel):
    __tablename__ = "knowledge_article"
    __audit_type__ = "knowledge_article"
    # The rendering follows the body; the count moves with resolutions (their own rows say so).
    __audit_exclude__ = frozenset({"body_html", "resolved_count"})

    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(10), default="draft", index=True)
    visibility: Mapped[str] = mapped_column(String(10), default="agents")
    revision: Mapped[int] = mapped_column(default=1)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    published_at: Mapped[datetime | None]
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    resolved_count: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)

    author = relationship("User", foreign_keys=[author_id], lazy="joined", innerjoin=False)
    links: Mapped[list[KnowledgeLink]] = relationship(
        back_populates="article", cascade="all, delete-orphan", lazy="selectin", order_by="KnowledgeLink.id"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("state IN ('draft', 'review', 'published', 'retired')", name="state"),
        CheckConstraint("visibility IN ('agents', 'everyone')", name="visibility"),
    )

    def linked(self, kind: str) -> list:
        """The targets of this article's links of ``kind`` (ids, or class names for ci_class)."""
        return [link.target for link in self.links if link.kind == kind]

    @property
    def excerpt(self) -> str:
        return render.excerpt(self.body_html)

    @property
    def ci_ids(self) -> list[int]:
        return self.linked("ci")

    @property
    def ci_classes(self) -> list[str]:
        return self.linked("ci_class")

    @property
    def category_ids(self) -> list[int]:
        return self.linked("category")

    @property
    def problem_ids(self) -> list[int]:
        return self.linked("problem")


class KnowledgeLink(Audited, TimestampedModel):
    """What an article is about: one CI, CI class, ticket category or problem (exactly one column
    set, named by ``kind``)."""

    __tablename__ = "knowledge_link"
    __audit_type__ = "knowledge_link"

    article_id: Mapped[int] = mapped_column(ForeignKey("knowledge_article.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    ci_id: Mapped[int | None] = mapped_column(ForeignKey("ci.id", ondelete="CASCADE"), index=True)
    ci_class: Mapped[str | None] = mapped_column(String(60), index=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_category.id", ondelete="CASCADE"), index=True)
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)

    article: Mapped[KnowledgeArticle] = relationship(back_populates="links")

    __table_args__ = (
        Index("ix_knowledge_link_article_kind", "article_id", "kind"),
        CheckConstraint("kind IN ('ci', 'ci_class', 'category', 'problem')", name="kind"),
    )

    COLUMNS = {"ci": "ci_id", "ci_class": "ci_class", "category": "category_id", "problem": "problem_id"}

    @property
    def target(self):
        return getattr(self, self.COLUMNS[self.kind])

    def audit_summary(self, action: str) -> str:
        verb = "unlinked from" if action == "delete" else "linked to"
        return f"knowledge article {self.article_id} {verb} {self.kind} {self.target}"[:300]

    def audit_ci_ids(self) -> set[int]:
        return {self.ci_id} if self.ci_id else set()


class KnowledgeResolution(Audited, TimestampedModel):
    """The article that resolved a ticket (one per ticket; a table of its own, so the ticket's table
    and its search triggers stay as they are)."""

    __tablename__ = "knowledge_resolution"
    __audit_type__ = "knowledge_resolution"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    article_id: Mapped[int] = mapped_column(ForeignKey("knowledge_article.id", ondelete="RESTRICT"), index=True)
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    article: Mapped[KnowledgeArticle] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (UniqueConstraint("ticket_id", name="uq_knowledge_resolution_ticket"),)

    def audit_summary(self, action: str) -> str:
        verb = "no longer resolves" if action == "delete" else "resolves"
        return f"knowledge article {self.article_id} {verb} ticket {self.ticket_id}"[:300]
