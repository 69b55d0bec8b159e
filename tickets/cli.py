"""`cairn ticket-categories list|add`: ticket categories from the command line, with the rules of
the API (the same schema and services)."""

from __future__ import annotations

import sys

import click
import marshmallow as ma
from flask.cli import AppGroup

from cairn.audit.context import Actor, acting_as
from cairn.uow import checkpoint

ticket_categories_cli = AppGroup("ticket-categories", help="Ticket categories and subcategories per kind.")
CLI_ACTOR = Actor("cli:ticket-categories")


def _fail(message: str):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _problems(errors: dict) -> str:
    return "; ".join(f"{key}: {messages}" for key, messages in errors.items())


@ticket_categories_cli.command("list")
@click.option("--kind", help="incident, request, problem or change (default: all).")
def list_command(kind):
    """Every category as a tree per kind: id, name, label, default team, inactive ones marked."""
    from tickets.categories import tree

    for kind_name, roots in tree(kind).items():
        for category, subcategories in roots:
            for row, indent in ((category, ""), *((s, "  ") for s in subcategories)):
                team = f"\tteam {row.default_team.name}" if row.default_team else ""
                state = "" if row.active else "\t(inactive)"
                click.echo(f"{kind_name}\t{indent}{row.id}\t{row.name}\t{row.label}{team}{state}")


@ticket_categories_cli.command("add")
@click.argument("name")
@click.option("--kind", required=True, help="incident, request, problem or change.")
@click.option("--label", required=True)
@click.option("--parent", "parent_id", type=int, help="The id of the category it is a subcategory of.")
@click.option("--team", "team_name", help="The name of its default team.")
def add_command(name, kind, label, parent_id, team_name):
    """Add a ticket category, or a subcategory with --parent."""
    from sqlalchemy import select

    from cairn.auth.models import Team
    from cairn.db import db
    from cairn.errors import DomainError
    from tickets.categories import create_category
    from tickets.schemas import TicketCategoryWriteSchema

    body = {"name": name, "kind": kind, "label": label}
    if parent_id is not None:
        body["parent_id"] = parent_id
    if team_name:
        team_id = db.session.scalar(select(Team.id).where(Team.name == team_name))
        if team_id is None:
            _fail(f"no team named {team_name}")
        body["default_team_id"] = team_id
    try:
        data = TicketCategoryWriteSchema().load(body)
        with acting_as(CLI_ACTOR):
            category = create_category(data)
            checkpoint()
    except ma.ValidationError as exc:
        _fail(_problems(exc.messages))
    except DomainError as exc:
        _fail(f"{exc.detail} {_problems(exc.errors or {})}".strip())
    click.echo(f"{kind} category {category.name} added (id {category.id})")


def register(app) -> None:
    app.cli.add_command(ticket_categories_cli)
