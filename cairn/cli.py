"""The `cairn` command line: users, tokens, workers (domains add their own commands in app.py)."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext

from cairn.audit.context import Actor, acting_as

CLI_ACTOR = Actor("cli")

users_cli = AppGroup("users", help="Manage users.")
tokens_cli = AppGroup("tokens", help="Manage API tokens.")


def _fail(message: str):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@users_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, help="admin, agent, change_manager, requester, integration, auditor")
@click.option("--name", default="", help="Display name.")
@click.option("--password", default=None, help="Password for the web UI (stored with argon2).")
def create_user_command(email, role, name, password):
    """Create a user."""
    from cairn.auth.services import create_user
    from cairn.db import db
    from cairn.errors import DomainError

    with acting_as(CLI_ACTOR):
        try:
            user = create_user(email, role, name, password)
        except DomainError as exc:
            _fail(str(exc))
        db.session.commit()
    click.echo(f"created user {user.id} {user.email} ({user.role})")


@users_cli.command("list")
def list_users_command():
    """List users."""
    from sqlalchemy import select

    from cairn.auth.models import User
    from cairn.db import db

    for user in db.session.scalars(select(User).order_by(User.id)):
        click.echo(f"{user.id}\t{user.email}\t{user.role}\t{'active' if user.active else 'inactive'}")


@tokens_cli.command("create")
@click.argument("email")
@click.option("--name", default="cli", help="What the token is for.")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None, help="Expire after N days.")
def create_token_command(email, name, expires_days):
    """Create a token for a user; the token is printed once, alone, on the last line."""
    from cairn.auth.services import create_token, find_user
    from cairn.db import db

    user = find_user(email)
    if user is None:
        _fail(f"no user with e-mail {email}")
    with acting_as(CLI_ACTOR):
        token, secret = create_token(user, name, expires_days)
        db.session.commit()
    click.echo(f"token {token.id} for {user.email} (shown once, store it now):")
    click.echo(secret)


@tokens_cli.command("revoke")
@click.argument("token_id", type=int)
def revoke_token_command(token_id):
    """Revoke a token by id."""
    from cairn.auth.models import ApiToken
    from cairn.auth.services import revoke_token
    from cairn.db import db

    token = db.session.get(ApiToken, token_id)
    if token is None:
        _fail(f"no token with id {token_id}")
    with acting_as(CLI_ACTOR):
        revoke_token(token)
        db.session.commit()
    click.echo(f"revoked token {token_id}")


@tokens_cli.command("list")
@click.argument("email")
def list_tokens_command(email):
    """List a user's tokens (never their secrets)."""
    from cairn.auth.services import find_user, tokens_of

    user = find_user(email)
    if user is None:
        _fail(f"no user with e-mail {email}")
    for token in tokens_of(user):
        state = "revoked" if token.revoked_at else "active"
        click.echo(f"{token.id}\t{token.prefix}…\t{token.name}\t{state}\texpires={token.expires_at}")


@click.command("worker")
@with_appcontext
@click.option("--queue", "queues", multiple=True, help="Queue names (default: the configured one).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker_command(queues, burst):
    """Run an RQ worker for Cairn's jobs."""
    from cairn.jobs.worker import run_worker

    _require_redis()
    run_worker(list(queues) or None, burst=burst)


@click.command("scheduler")
@with_appcontext
def scheduler_command():
    """Enqueue the periodic jobs (SLA breaches, sweepers, reminders) when due; run one per deployment."""
    from cairn.jobs.worker import run_scheduler

    _require_redis()
    run_scheduler()


def _require_redis():
    if not current_app.config.get("REDIS_URL"):
        _fail("REDIS_URL is not set: without Redis, jobs run inline and no worker is needed")


def register_commands(app) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(scheduler_command)


def _create_app():
    from cairn.app import create_app

    return create_app()


main = FlaskGroup(create_app=_create_app, help="Cairn: CMDB and ITSM ticketing.")
