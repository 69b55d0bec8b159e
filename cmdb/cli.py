"""`cairn ci-classes list|add|delete`: custom CI classes from the command line, with the rules of
the API (the same schema and services)."""

from __future__ import annotations

import sys

import click
import marshmallow as ma
from flask.cli import AppGroup

from cairn.audit.context import Actor, acting_as
from cairn.uow import checkpoint

ci_classes_cli = AppGroup("ci-classes", help="CI classes: the built-in ones and custom ones added at run time.")
CLI_ACTOR = Actor("cli:ci-classes")


def _fail(message: str):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _problems(errors: dict) -> str:
    return "; ".join(f"{key}: {messages}" for key, messages in errors.items())


@ci_classes_cli.command("list")
def list_command():
    """Every class: name, category, parent, built-in or custom, label."""
    from cmdb.classes import REGISTRY

    for c in REGISTRY.values():
        click.echo(f"{c.name}\t{c.category}\t{c.parent or '-'}\t{'built-in' if c.builtin else 'custom'}\t{c.label}")


@ci_classes_cli.command("add")
@click.argument("name")
@click.option("--parent", required=True, help="The class it inherits its attributes from.")
@click.option("--label", required=True)
@click.option("--category", help="hardware, software, cloud, mobile, network or service (default: the parent's).")
@click.option("--icon", help="An icon name (default: the parent's).")
@click.option("--relationship-type", "relationship_types", multiple=True, help="Repeatable (default: the parent's).")
def add_command(name, parent, label, category, icon, relationship_types):
    """Add a custom CI class (accepted at once by every serving process)."""
    from cairn.errors import DomainError
    from cmdb.custom_classes import create_class
    from cmdb.schemas import CIClassWriteSchema

    body = {"name": name, "parent": parent, "label": label}
    body.update({k: v for k, v in (("category", category), ("icon", icon)) if v})
    if relationship_types:
        body["relationship_types"] = list(relationship_types)
    try:
        data = CIClassWriteSchema().load(body)
        with acting_as(CLI_ACTOR):
            created = create_class(data)
            checkpoint()
    except ma.ValidationError as exc:
        _fail(_problems(exc.messages))
    except DomainError as exc:
        _fail(f"{exc.detail} {_problems(exc.errors or {})}".strip())
    click.echo(f"CI class {created.name} added (parent {created.parent}, category {created.category})")


@ci_classes_cli.command("delete")
@click.argument("name")
def delete_command(name):
    """Delete a custom class no CI, subclass or relationship type uses."""
    from cairn.errors import DomainError
    from cmdb.custom_classes import delete_class

    try:
        with acting_as(CLI_ACTOR):
            delete_class(name)
            checkpoint()
    except DomainError as exc:
        _fail(exc.detail)
    click.echo(f"CI class {name} deleted")


def register(app) -> None:
    app.cli.add_command(ci_classes_cli)
