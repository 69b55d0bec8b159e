"""/articles (the knowledge base), /tickets/{id}/suggested-articles, /tickets/{id}/resolution-article."""

from __future__ import annotations

from flask.views import MethodView

from cairn.api import Blueprint, check_if_match, with_etag
from cairn.auth.guard import current_user, requires
from cairn.auth.roles import ADMIN, EVERYONE
from cairn.auth.scopes import READ, TICKETS_WRITE, scope
from cairn.errors import Invalid, NotFound
from cairn.pagination import paginate_select
from tickets import services as tickets
from tickets.knowledge import services
from tickets.knowledge.schemas import (
    ArticleQuerySchema,
    ArticleSchema,
    ArticleUpdateSchema,
    ResolutionSchema,
    ResolutionWriteSchema,
    SuggestDraftSchema,
    SuggestionSchema,
    SuggestQuerySchema,
    VersionBriefSchema,
    VersionSchema,
)
from tickets.workflow import STAFF

blp = Blueprint("knowledge", __name__, description="Knowledge articles, suggestions and resolutions")


def _article(article_id: int, *, for_update: bool = False):
    return services.get_article(article_id, current_user(), for_update=for_update)


@blp.route("/articles")
class Articles(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(ArticleQuerySchema, location="query")
    @blp.response(200, ArticleSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """Articles you may read (requesters: published ones for everyone); with q, best match first."""
        return paginate_select(services.list_articles(filters, current_user()), pagination_parameters)

    @requires(*services.WRITERS)
    @blp.arguments(ArticleSchema)
    @blp.response(201, ArticleSchema)
    def post(self, data):
        """Write an article (a draft; publishing at once needs a publisher's role)."""
        return with_etag(services.create_article(data, current_user()))


@blp.route("/articles/<int:article_id>")
class ArticleById(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, ArticleSchema)
    def get(self, article_id):
        """One article, its body rendered and sanitised."""
        return with_etag(_article(article_id))

    @requires(*services.WRITERS)
    @blp.arguments(ArticleUpdateSchema)
    @blp.response(200, ArticleSchema)
    def patch(self, data, article_id):
        """Change an article's text, visibility, links, or state (a legal move, else 409)."""
        article = _article(article_id, for_update=True)
        check_if_match(article)
        return with_etag(services.update_article(article, data, current_user()))

    @requires(ADMIN)
    @blp.response(204)
    def delete(self, article_id):
        """Delete an article that resolved no ticket (else 409: retire it)."""
        article = _article(article_id, for_update=True)
        check_if_match(article)
        services.delete_article(article, current_user())


@blp.route("/articles/<int:article_id>/versions")
class Versions(MethodView):
    @requires(*services.READERS)
    @blp.response(200, VersionBriefSchema(many=True))
    def get(self, article_id):
        """Every version of the article's content, oldest first (from the change log)."""
        return services.past_versions(_article(article_id))


@blp.route("/articles/<int:article_id>/versions/<int:revision>")
class VersionById(MethodView):
    @requires(*services.READERS)
    @blp.response(200, VersionSchema)
    def get(self, article_id, revision):
        """One past version, its body rendered and sanitised."""
        return services.past_version(_article(article_id), revision)


@blp.route("/articles/suggest")
class SuggestForDraft(MethodView):
    @requires(*EVERYONE)
    @scope(READ)
    @blp.arguments(SuggestDraftSchema)
    @blp.response(200, SuggestionSchema(many=True))
    def post(self, data):
        """Published articles that may answer a ticket not yet sent (its title, description, CIs, category)."""
        return services.suggest(
            f"{data['title']}\n{data['description']}",
            current_user(),
            ci_ids=data["ci_ids"],
            category_id=data["category_id"],
            limit=data["limit"],
        )


@blp.route("/tickets/<int:ticket_id>/suggested-articles")
class SuggestedForTicket(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(SuggestQuerySchema, location="query")
    @blp.response(200, SuggestionSchema(many=True))
    def get(self, args, ticket_id):
        """Published articles that may answer this ticket (its words, its CIs and their classes, its category)."""
        ticket = tickets.get_ticket(ticket_id, current_user())
        return services.suggest_for_ticket(ticket, current_user(), limit=args["limit"])


@blp.route("/tickets/<int:ticket_id>/resolution-article")
class Resolution(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, ResolutionSchema)
    def get(self, ticket_id):
        """The article this ticket was resolved with (404 when none)."""
        ticket = tickets.get_ticket(ticket_id, current_user())
        found = services.resolution_of(ticket)
        if found is None or not services.can_see(current_user(), found.article):
            raise NotFound(f"{ticket.number} has no resolution article.")
        return found

    @requires(*STAFF)
    @scope(TICKETS_WRITE)
    @blp.arguments(ResolutionWriteSchema)
    @blp.response(200, ResolutionSchema)
    def put(self, data, ticket_id):
        """Attach a published article as the ticket's resolution (its count goes up); resolve: resolve it too."""
        ticket = tickets.get_ticket(ticket_id, current_user(), for_update=True)
        try:
            article = services.get_article(data["article_id"], current_user())
        except NotFound as error:  # an id in a body that names nothing is a field error
            raise Invalid(error.detail, errors={"article_id": [error.detail]}) from None
        return services.attach_resolution(
            ticket,
            article,
            current_user(),
            resolve=data["resolve"],
            note=data["note"],
            resolution_code=data["resolution_code"],
        )

    @requires(*STAFF)
    @scope(TICKETS_WRITE)
    @blp.response(204)
    def delete(self, ticket_id):
        """Detach the ticket's resolution article (its count goes down)."""
        services.detach_resolution(tickets.get_ticket(ticket_id, current_user(), for_update=True))
