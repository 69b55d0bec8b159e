"""`cairn custom-fields list|create|delete`: the definitions from the command line, with the rules
of the API (the same schema and services)."""

from __future__ import annotations

import json
import sys

import click
import marshmallow as ma
from flask.cli import AppGroup
from sqlalchemy import select

from cairn.audit.context import Actor, acting_as
from cairn.uow import checkpoint

custom_fields_cli = AppGroup("custom-fields", help="Custom fields of CI classes, ticket kinds and ticket categories.")
CLI_ACTOR = Actor("cli:custom-fields")


def _fail(message: str):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _problems(errors: dict) -> str:
    return "; ".join(f"{key}: {messages}" for key, messages in errors.items())


@custom_fields_cli.command("list")
def list_command():
    """Every custom field: name, type, what it applies to, required."""
    from cairn.db import db
    from cmdb.custom_fields.services import definitions_select

    for field in db.session.scalars(definitions_select()):
        applies = ", ".join(
            [
                *field.ci_classes,
                *(f"{kind} tickets" for kind in field.ticket_kinds),
                *(f"ticket category {category_id}" for category_id in field.ticket_categories or ()),
            ]
        )
        required = " required" if field.required else ""
        click.echo(f"{field.id}\t{field.name}\t{field.type}{required}\t{applies}\t{field.label}")


@custom_fields_cli.command("create")
@click.argument("name")
@click.option("--label", required=True)
@click.option("--type", "type_", required=True, help="text, integer, boolean, choice, ... (API.md)")
@click.option("--ci-class", "ci_classes", multiple=True, help="A CI class it applies to (repeatable).")
@click.option("--ticket-kind", "ticket_kinds", multiple=True, help="A ticket kind it applies to (repeatable).")
@click.option(
    "--ticket-category",
    "ticket_categories",
    multiple=True,
    type=int,
    help="A ticket category id it applies to, with its subcategories (repeatable).",
)
@click.option("--required", is_flag=True)
@click.option("--default", "default", help='The default, as JSON (true, 3, "text").')
@click.option("--choice", "choices", multiple=True, help="A choice (repeatable).")
@click.option("--min", "minimum", type=float)
@click.option("--max", "maximum", type=float)
@click.option("--regex")
@click.option("--group", default="")
@click.option("--help-text", default="")
def create_command(
    name,
    label,
    type_,
    ci_classes,
    ticket_kinds,
    ticket_categories,
    required,
    default,
    choices,
    minimum,
    maximum,
    regex,
    group,
    help_text,
):
    """Define a custom field (enforced at once by every serving process)."""
    from cairn.errors import DomainError
    from cmdb.custom_fields.schemas import CustomFieldWriteSchema
    from cmdb.custom_fields.services import create_definition

    validation = {k: v for k, v in (("min", minimum), ("max", maximum), ("regex", regex)) if v is not None}
    body = {
        "name": name,
        "label": label,
        "type": type_,
        "applies_to": {
            "ci_classes": list(ci_classes),
            "ticket_kinds": list(ticket_kinds),
            "ticket_categories": list(ticket_categories),
        },
        "required": required,
        "choices": list(choices),
        "validation": validation,
        "group": group,
        "help_text": help_text,
    }
    if default is not None:
        try:
            body["default"] = json.loads(default)
        except ValueError:
            _fail('--default is JSON: true, 3, 2.5 or "text" (with the quotes)')
    try:
        data = CustomFieldWriteSchema().load(body)
        with acting_as(CLI_ACTOR):
            field = create_definition(data)
            checkpoint()
    except ma.ValidationError as exc:
        _fail(_problems(exc.messages))
    except DomainError as exc:
        _fail(f"{exc.detail} {_problems(exc.errors or {})}".strip())
    click.echo(f"custom field {field.name} created (id {field.id})")


@custom_fields_cli.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also when CIs or tickets hold values (they are removed).")
def delete_command(name, force):
    """Delete a custom field by name."""
    from cairn.db import db
    from cairn.errors import DomainError
    from cmdb.custom_fields.models import CustomField
    from cmdb.custom_fields.services import delete_definition

    field = db.session.scalar(select(CustomField).where(CustomField.name == name))
    if field is None:
        _fail(f"no custom field named {name}")
    try:
        with acting_as(CLI_ACTOR):
            delete_definition(field, force=force)
            checkpoint()
    except DomainError as exc:
        _fail(exc.detail)
    click.echo(f"custom field {name} deleted")


def register(app) -> None:
    app.cli.add_command(custom_fields_cli)
