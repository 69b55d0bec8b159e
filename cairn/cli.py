"""The `cairn` command line: users, tokens, workers (domains add their own commands in app.py)."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext

from cairn.audit.context import Actor, acting_as
from cairn.auth.scopes import SCOPES
from cairn.uow import checkpoint

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
    from cairn.errors import DomainError

    with acting_as(CLI_ACTOR):
        try:
            user = create_user(email, role, name, password)
        except DomainError as exc:
            _fail(str(exc))
        checkpoint()
    click.echo(f"created user {user.id} {user.email} ({user.role})")


@users_cli.command("set-password")
@click.argument("email")
@click.password_option(help="The new password (asked twice when not given).")
def set_password_command(email, password):
    """Set a user's password for the web desk (signs out their browser sessions)."""
    from cairn.auth.services import check_password_rules, find_user, refuse_directory_password, set_password
    from cairn.errors import DomainError

    user = find_user(email)
    if user is None:
        _fail(f"no user with e-mail {email}")
    with acting_as(CLI_ACTOR):
        try:
            refuse_directory_password(user)  # a directory user's password is the directory's
            check_password_rules(user, password)
            set_password(user, password)
        except DomainError as exc:
            _fail(str(exc))
        checkpoint()
    click.echo(f"password set for {user.email}")


@users_cli.command("reset-2fa")
@click.argument("email")
def reset_two_factor_command(email):
    """Remove a user's two-factor sign-in (lost phone and recovery codes); recorded in the sign-in audit."""
    from cairn.auth import two_factor
    from cairn.auth.services import find_user

    user = find_user(email)
    if user is None:
        _fail(f"no user with e-mail {email}")
    with acting_as(CLI_ACTOR):
        done = two_factor.reset(user, actor="the command line")
        checkpoint()
    click.echo(f"two-factor sign-in of {user.email} reset" if done else f"{user.email} has no two-factor sign-in")


@users_cli.command("list")
def list_users_command():
    """List users."""
    from sqlalchemy import select

    from cairn.auth.models import User
    from cairn.db import db

    for user in db.session.scalars(select(User).order_by(User.id)):
        click.echo(f"{user.id}\t{user.email}\t{user.role}\t{'active' if user.active else 'inactive'}\t{user.source}")


@tokens_cli.command("create")
@click.argument("email")
@click.option("--name", default="cli", help="What the token is for.")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None, help="Expire after N days.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(SCOPES), help="Limit to this scope (repeatable).")
@click.option("--allow-network", "networks", multiple=True, help="Only from this network, CIDR (repeatable).")
def create_token_command(email, name, expires_days, scopes, networks):
    """Create a token for a user; the token is printed once, alone, on the last line."""
    import ipaddress

    from cairn.auth.services import create_token, find_user

    user = find_user(email)
    if user is None:
        _fail(f"no user with e-mail {email}")
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            _fail(f"not a network: {network} (give an address or CIDR such as 10.0.0.0/8)")
    with acting_as(CLI_ACTOR):
        token, secret = create_token(
            user, name, expires_days, scopes=list(scopes) or None, allowed_networks=list(networks) or None
        )
        checkpoint()
    limits = f", scopes {', '.join(token.scopes)}" if token.scopes else ""
    limits += f", from {', '.join(token.allowed_networks)}" if token.allowed_networks else ""
    click.echo(f"token {token.id} for {user.email}{limits} (shown once, store it now):")
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
        checkpoint()
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
@click.option("--queue", "queues", multiple=True, help="Queue names (default: every queue the app uses).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker_command(queues, burst):
    """Run an RQ worker for Cairn's jobs (every queue unless --queue is given)."""
    from cairn.jobs.worker import all_queues, run_worker

    if not current_app.config.get("REDIS_URL"):
        _fail("REDIS_URL is not set: without Redis, jobs run in the serving process and no worker is needed")
    names = list(queues) or all_queues()
    click.echo(f"worker: queues {', '.join(names)}", err=True)
    run_worker(names, burst=burst)


@click.command("scheduler")
@with_appcontext
def scheduler_command():
    """Run the periodic jobs (outbox sweep, SLA breaches, mail sweeps, reminders) when due; one per
    deployment. With Redis it queues them for the workers; without, it runs them here."""
    if current_app.config.get("REDIS_URL"):
        from cairn.jobs.worker import run_scheduler

        run_scheduler()
        return
    from cairn.jobs.embedded import EmbeddedRunner

    click.echo(
        "REDIS_URL is not set: running the periodic jobs in this process (the serving process does "
        "the same; database leases keep each job to one runner at a time). Ctrl-C stops.",
        err=True,
    )
    runner = EmbeddedRunner(current_app._get_current_object())
    from cairn import outbox

    outbox.set_waker(runner.wake)
    try:
        runner.run_forever()
    except KeyboardInterrupt:
        pass


@click.command("sweep")
@with_appcontext
@click.option("--kind", default=None, help="Only this durable kind (mail, import, discovery).")
def sweep_command(kind):
    """Queue again the durable jobs whose job was lost (what the scheduler does every minute)."""
    from cairn.jobs.durable import sweep

    for name, count in sweep(kind).items():
        click.echo(f"{name}: {count} queued again")


@click.command("run")
@click.option("--host", "-h", default="127.0.0.1", show_default=True)
@click.option("--port", "-p", default=5000, show_default=True, type=int)
@with_appcontext
def run_command(host, port):
    """Serve with the development server; without Redis, also the periodic jobs and outbox consumers
    on a background thread (use gunicorn in production)."""
    from cairn.jobs.embedded import start_embedded_runner

    app = current_app._get_current_object()
    start_embedded_runner(app)
    from werkzeug.serving import run_simple

    run_simple(host, port, app, use_reloader=False, threaded=True)


def register_commands(app) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(scheduler_command)
    app.cli.add_command(run_command)
    app.cli.add_command(sweep_command)
    from cairn.directory.cli import directory_cli

    app.cli.add_command(directory_cli)


def _create_app():
    from cairn.app import create_app
    from cairn.db import sqlite_begin_immediate

    sqlite_begin_immediate.set(True)  # a command writes: on SQLite, take the write lock up front
    return create_app()


def _main_group() -> FlaskGroup:
    """`cairn`: Flask's `shell` and `routes`, and our own `run` (it starts the embedded runner)."""
    from flask.cli import routes_command, shell_command

    group = FlaskGroup(create_app=_create_app, add_default_commands=False, help="Cairn: CMDB and ITSM ticketing.")
    group.add_command(shell_command)
    group.add_command(routes_command)
    return group


main = _main_group()
