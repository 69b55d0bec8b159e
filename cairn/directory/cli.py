"""`cairn directory`: sync now (or see what a sync would change), and the group mappings."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from cairn.audit.context import Actor, acting_as

directory_cli = AppGroup("directory", help="LDAP / Active Directory: sync and group mappings.")
mappings_cli = AppGroup("mappings", help="Which directory groups give which role and team.")
directory_cli.add_command(mappings_cli)
CLI_ACTOR = Actor("cli")


def _fail(message: str):
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@directory_cli.command("sync")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
def sync_command(dry_run):
    """Create, update and deactivate directory users as the directory says; print what changed."""
    from cairn.directory.client import DirectoryUnavailable
    from cairn.directory.services import sync

    with acting_as(CLI_ACTOR):
        try:
            report = sync(dry_run=dry_run)
        except DirectoryUnavailable as exc:
            _fail(f"directory unavailable: {exc}")
    for line in report.lines:
        click.echo(line)
    counts = ", ".join(f"{name} {count}" for name, count in report.counts.items())
    click.echo(f"{'dry run, nothing changed: ' if dry_run else ''}{counts}")


@mappings_cli.command("list")
def list_mappings_command():
    """List the group mappings."""
    from cairn.directory.services import mappings

    for mapping in mappings():
        team = mapping.team.name if mapping.team is not None else "-"
        role = mapping.role or "-"
        click.echo(f"{mapping.id}\t{mapping.group_dn}\trole={role}\tteam={team}\tsource={mapping.source}")


@mappings_cli.command("add")
@click.argument("group_dn")
@click.option("--role", default=None, help="The role the group's members get.")
@click.option("--team", "team_name", default=None, help="The team (by name) the group's members are in.")
@click.option(
    "--source",
    type=click.Choice(["ldap", "oidc"]),
    default="ldap",
    help="ldap: GROUP_DN is a directory DN; oidc: a value of the OpenID provider's groups claim.",
)
def add_mapping_command(group_dn, role, team_name, source):
    """Map a directory group (by DN), or an OpenID provider's group (--source oidc), to a role, a team, or both."""
    from sqlalchemy import select

    from cairn.auth.models import Team
    from cairn.db import db
    from cairn.directory.services import create_mapping
    from cairn.errors import DomainError

    team_id = None
    if team_name is not None:
        team_id = db.session.scalar(select(Team.id).where(Team.name == team_name))
        if team_id is None:
            _fail(f"no team named {team_name!r}")
    with acting_as(CLI_ACTOR):
        try:
            mapping = create_mapping(group_dn, role, team_id, source)
        except DomainError as exc:
            _fail(exc.detail)
    click.echo(f"mapping {mapping.id}: {mapping.group_dn} -> role={mapping.role or '-'} team={team_name or '-'}")


@mappings_cli.command("remove")
@click.argument("mapping_id", type=int)
def remove_mapping_command(mapping_id):
    """Remove a group mapping by id."""
    from cairn.db import db
    from cairn.directory.models import DirectoryGroupMapping
    from cairn.directory.services import delete_mapping

    mapping = db.session.get(DirectoryGroupMapping, mapping_id)
    if mapping is None:
        _fail(f"no mapping with id {mapping_id}")
    with acting_as(CLI_ACTOR):
        delete_mapping(mapping)
    click.echo(f"removed mapping {mapping_id}")
