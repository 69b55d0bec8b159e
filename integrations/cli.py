"""Commands that span domains."""

from __future__ import annotations

import importlib

import click
from flask.cli import with_appcontext

from cairn.audit.context import Actor, acting_as
from cairn.uow import checkpoint


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when the CMDB already holds CIs.")
@click.option("--seed", default=42, show_default=True, help="Random seed, for a repeatable estate.")
@with_appcontext
def seed_demo_command(if_empty, seed):
    """Fill the database with a realistic demo estate and print an admin token."""
    from integrations.demo import estate_exists, seed_demo

    if if_empty and estate_exists():
        click.echo("demo: the CMDB already holds CIs; nothing seeded (cairn tokens create admin@example.com)")
        return
    with acting_as(Actor("cli:seed-demo")):
        estate = seed_demo(seed)
        checkpoint()
    click.echo(f"demo: {estate.count} CIs, {len(estate.users)} users, {len(estate.teams)} teams created")
    click.echo("demo: admin@example.com token (shown once):")
    click.echo(estate.admin_token)


# Modules with a ``register(app)`` that adds their commands.
COMMAND_MODULES = ("integrations.reports.cli", "integrations.email.cli", "integrations.sync.cli")


def register_commands(app) -> None:
    app.cli.add_command(seed_demo_command)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
