"""Commands that span domains."""

from __future__ import annotations

import importlib
import sys

import click
from flask.cli import AppGroup, with_appcontext

from cairn.audit.context import Actor, acting_as
from cairn.uow import checkpoint


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when the CMDB already holds CIs.")
@click.option("--seed", default=42, show_default=True, help="Random seed, for a repeatable estate.")
@with_appcontext
def seed_demo_command(if_empty, seed):
    """Fill an empty database with a realistic demo estate and print an admin token. On a database
    that holds the demo already it says so and exits 1 (with --if-empty: 0, nothing done)."""
    from cairn.db import db
    from cairn.errors import DomainError
    from integrations.demo import estate_exists, loaded_demo, seed_demo

    if if_empty and estate_exists():
        click.echo(
            "demo: the CMDB already holds CIs; nothing seeded. Sign in with the demo accounts printed when it was "
            "loaded (reset one: cairn users set-password EMAIL), or get a token: cairn tokens create EMAIL"
        )
        return
    where = db.engine.url.render_as_string(hide_password=True)
    marker = loaded_demo()
    if marker is not None:
        _fail(
            f"demo: {where} holds the demo estate already ({marker.name} is CI {marker.id}); nothing loaded. "
            "To load it afresh, use an empty database (delete the SQLite file, or set DATABASE_URL)."
        )
    with acting_as(Actor("cli:seed-demo")):
        try:
            estate = seed_demo(seed)
        except DomainError as exc:
            _fail(f"demo: not loaded into {where}, nothing changed: {exc.detail} Load it into an empty database.")
        checkpoint()
    click.echo(
        f"demo: {estate.count} CIs, {estate.tickets} tickets, {len(estate.users)} users, "
        f"{len(estate.teams)} teams created"
    )
    from integrations.demo import DEMO_PASSWORD

    click.echo(f"demo: sign in to the web desk with one of these, password {DEMO_PASSWORD!r}:")
    for email, role in estate.sign_ins:
        click.echo(f"demo:   {email:<40} {role}")
    click.echo("demo: admin@example.com token (shown once):")
    click.echo(estate.admin_token)


graph_cli = AppGroup("graph", help="The dependency graph each serving process keeps.")


@graph_cli.command("snapshot")
def graph_snapshot_command():
    """Rebuild the dependency graph from the tables and write its snapshot file, which serving
    processes restore at start instead of rebuilding (then they catch up from the change log)."""
    from relations import snapshot
    from relations.tasks import write_graph_snapshot

    try:
        written = write_graph_snapshot()
    except (OSError, snapshot.SnapshotError) as exc:
        _fail(f"graph snapshot: not written: {exc}")
    if written is None:
        _fail("graph snapshot: CAIRN_GRAPH_SNAPSHOT_DIR is off; nothing written")
    click.echo(
        f"graph snapshot: {written.path} ({written.size:,} bytes): {written.nodes:,} CIs, "
        f"{written.edges:,} relationships, graph version {written.version}, change log up to "
        f"{written.watermark}; rebuilt in {written.build_s:.2f} s, written in {written.write_s:.2f} s"
    )


@click.command("graphd")
@with_appcontext
@click.option(
    "--socket",
    "socket_path",
    default=None,
    help="The Unix socket to listen on (default: CAIRN_GRAPHD_SOCKET).",
)
@click.option(
    "--refresh-seconds",
    default=1.0,
    show_default=True,
    type=float,
    help="Catch up with the change log this often between questions (0: only when asked).",
)
def graphd_command(socket_path, refresh_seconds):
    """Keep the dependency graph once for this host and answer the graph questions of its web and
    job processes (those started with CAIRN_GRAPHD_SOCKET set to the same path) over a Unix socket."""
    from flask import current_app

    from cairn.config import setting
    from relations import graphd

    path = socket_path or str(setting(graphd.SOCKET_SETTING, "") or "").strip()
    if not path:
        _fail("graphd: give --socket PATH or set CAIRN_GRAPHD_SOCKET")
    app = current_app._get_current_object()
    try:
        graphd.serve(
            app,
            path,
            refresh_seconds=refresh_seconds,
            ready=lambda host: click.echo(f"graphd: answering on {path}", err=True),
        )
    except OSError as exc:
        _fail(f"graphd: {exc}")
    except KeyboardInterrupt:
        pass


def _fail(message: str):
    from cairn.db import db

    db.session.rollback()
    click.echo(message, err=True)
    sys.exit(1)


# Modules with a ``register(app)`` that adds their commands.
COMMAND_MODULES = (
    "cmdb.custom_fields.cli",
    "cmdb.cli",
    "tickets.cli",
    "integrations.reports.cli",
    "integrations.email.cli",
    "integrations.sync.cli",
    "integrations.agents.cli",
)


def register_commands(app) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(graph_cli)
    app.cli.add_command(graphd_command)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
