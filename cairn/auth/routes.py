"""/me, /users, /teams, /tokens."""

from __future__ import annotations

from datetime import UTC

from flask import g
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from cairn.api import Blueprint, check_if_match, with_etag
from cairn.auth import services, two_factor
from cairn.auth.guard import current_user, requires
from cairn.auth.models import ApiToken, AuthEvent, Team, User
from cairn.auth.roles import ADMIN, ADMINS, AUDITOR, EVERYONE, STAFF_READERS
from cairn.auth.schemas import (
    AuthEventQuerySchema,
    AuthEventSchema,
    MeSchema,
    NewTokenSchema,
    TeamQuerySchema,
    TeamSchema,
    TeamUpdateSchema,
    TokenSchema,
    UserQuerySchema,
    UserSchema,
    UserUpdateSchema,
)
from cairn.db import get_or_404
from cairn.pagination import paginate_select

blp = Blueprint("auth", __name__, description="Users, teams and API tokens")


def _contains(text: str, *columns):
    """Any of ``columns`` contains ``text``, in any case (% and _ in it are plain characters)."""
    return or_(*(func.lower(column).contains(text.lower(), autoescape=True) for column in columns))


@blp.route("/me")
class Me(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, MeSchema)
    def get(self):
        """The caller, what the calling token is limited to (its scopes and networks), and whether
        the caller's web sign-in asks for a second factor."""
        user, token = current_user(), g.token
        user.token_scopes, user.token_allowed_networks = token.scopes, token.allowed_networks  # shown, not stored
        user.two_factor = two_factor.is_enabled(user)
        return user


@blp.route("/users")
class Users(MethodView):
    @requires(*STAFF_READERS)
    @blp.arguments(UserQuerySchema, location="query")
    @blp.response(200, UserSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List users."""
        stmt = select(User).options(selectinload(User.directory_profile)).order_by(User.id)
        if "role" in args:
            stmt = stmt.where(User.role == args["role"])
        if "source" in args:
            stmt = stmt.where(User.source == args["source"])
        if args.get("q"):
            stmt = stmt.where(_contains(args["q"], User.email, User.name))
        return paginate_select(stmt, pagination_parameters)

    @requires(*ADMINS)
    @blp.arguments(UserSchema)
    @blp.response(201, UserSchema)
    def post(self, data):
        """Create a user."""
        user = services.create_user(data["email"], data["role"], data.get("name", ""), data.get("password"))
        if "active" in data:
            user.active = data["active"]
        return with_etag(user)


@blp.route("/users/<int:user_id>")
class UserById(MethodView):
    @requires(*STAFF_READERS)
    @blp.response(200, UserSchema)
    def get(self, user_id):
        """One user."""
        return with_etag(get_or_404(User, user_id))

    @requires(*ADMINS)
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    def patch(self, data, user_id):
        """Change a user's name, role, password or active flag."""
        user = get_or_404(User, user_id, for_update=True)
        check_if_match(user)
        # refuses an admin's own demotion and the last active admin's (409)
        services.update_user(user, data, actor=current_user())
        return with_etag(user)


@blp.route("/teams")
class Teams(MethodView):
    @requires(*EVERYONE)
    @blp.arguments(TeamQuerySchema, location="query")
    @blp.response(200, TeamSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List teams."""
        stmt = select(Team).order_by(Team.name, Team.id)
        if args.get("q"):
            stmt = stmt.where(_contains(args["q"], Team.name, Team.email))
        return paginate_select(stmt, pagination_parameters)

    @requires(*ADMINS)
    @blp.arguments(TeamSchema)
    @blp.response(201, TeamSchema)
    def post(self, data):
        """Create a team, optionally with its members."""
        team = services.create_team(
            data["name"],
            data.get("email"),
            data.get("description", ""),
            data.get("member_ids", ()),
        )
        return with_etag(team)


@blp.route("/teams/<int:team_id>")
class TeamById(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, TeamSchema)
    def get(self, team_id):
        """One team with its members."""
        return with_etag(get_or_404(Team, team_id))

    @requires(*ADMINS)
    @blp.arguments(TeamUpdateSchema)
    @blp.response(200, TeamSchema)
    def patch(self, data, team_id):
        """Rename a team or replace its members."""
        team = get_or_404(Team, team_id, for_update=True)
        check_if_match(team)
        services.update_team(team, data)
        return with_etag(team)


@blp.route("/tokens")
class Tokens(MethodView):
    @requires(*EVERYONE)
    @blp.response(200, TokenSchema(many=True))
    def get(self):
        """The caller's tokens (their secrets are never shown again)."""
        return services.tokens_of(current_user())

    @requires(*EVERYONE)
    @blp.arguments(TokenSchema)
    @blp.response(201, NewTokenSchema)
    def post(self, data):
        """Create a token for the caller; the secret is in this response only. A token limited to
        some scopes or networks makes tokens limited at least as much."""
        expires_at = services.parse_expiry(data.get("expires_at"))
        scopes, networks = services.narrower_limits(g.token, data.get("scopes"), data.get("allowed_networks"))
        token, secret = services.create_token(
            current_user(), data.get("name", ""), scopes=scopes, allowed_networks=networks
        )
        token.expires_at = expires_at
        token.token = secret
        return token


@blp.route("/tokens/<int:token_id>")
class TokenById(MethodView):
    @requires(*EVERYONE)
    @blp.response(204)
    def delete(self, token_id):
        """Revoke a token (one's own; admins any)."""
        token = get_or_404(ApiToken, token_id, for_update=True)
        if token.user_id != current_user().id and current_user().role != ADMIN:
            abort(404, message="No such token.")
        services.revoke_token(token)


@blp.route("/auth-events")
class AuthEvents(MethodView):
    @requires(ADMIN, AUDITOR)
    @blp.arguments(AuthEventQuerySchema, location="query")
    @blp.response(200, AuthEventSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """The sign-in audit, newest first: sign-ins, failures with their reason, throttling,
        sign-outs, and token use by address."""
        stmt = select(AuthEvent)
        for key in ("kind", "user_id", "ip"):
            if filters.get(key) is not None:
                stmt = stmt.where(getattr(AuthEvent, key) == filters[key])
        if filters.get("since"):
            stmt = stmt.where(AuthEvent.at >= filters["since"].astimezone(UTC).replace(tzinfo=None))
        if filters.get("until"):
            stmt = stmt.where(AuthEvent.at < filters["until"].astimezone(UTC).replace(tzinfo=None))
        return paginate_select(stmt.order_by(AuthEvent.id.desc()), pagination_parameters)
