"""`cairn agents token create SITE`, `cairn agents token revoke PREFIX`, `cairn agents inventory FILE`,
`cairn discover nmap FILE.xml`."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from cairn.audit.context import Actor, acting_as
from cairn.errors import Invalid
from cairn.uow import checkpoint


@click.group("agents")
def agents_cli():
    """Inventory agents (FusionInventory, OCS Inventory): site tokens and local inventories."""


@agents_cli.group("token")
def token_cli():
    """Site tokens the agents put in their --server URL."""


@token_cli.command("create")
@click.argument("site")
@with_appcontext
def token_create_command(site):
    """Make a site token (it grants inventory only); the token is printed alone on the last line."""
    from integrations.agents import services

    with acting_as(Actor("cli:agents-token")):
        try:
            token, secret = services.create_token(site)
        except Invalid as exc:
            raise click.ClickException(f"{exc.detail} {exc.errors}")
        checkpoint()
    click.echo(f"agent token {token.prefix}… for site {site} (shown once; agents post to")
    click.echo("  http://HOST/api/v1/agent-inventory/<token>):")
    click.echo(secret)


@token_cli.command("revoke")
@click.argument("prefix")
@with_appcontext
def token_revoke_command(prefix):
    """Revoke the site tokens whose prefix is PREFIX."""
    from sqlalchemy import select

    from cairn.db import db, utcnow
    from integrations.agents.models import AgentToken

    with acting_as(Actor("cli:agents-token")):
        tokens = db.session.scalars(
            select(AgentToken).where(AgentToken.prefix == prefix, AgentToken.revoked_at.is_(None))
        )
        count = 0
        for token in tokens:
            token.revoked_at = utcnow()
            count += 1
        checkpoint()
    click.echo(f"{count} token(s) revoked")


@agents_cli.command("inventory")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--site", default="local", show_default=True, help="The site the inventory belongs to.")
@with_appcontext
def inventory_command(path, site):
    """Reconcile an inventory file an agent wrote with --local (XML, or zlib-compressed XML)."""
    from integrations.agents import protocol, services

    try:
        request = protocol.read_request(Path(path).read_bytes())
    except protocol.ProtocolError as exc:
        raise click.ClickException(exc.message)
    content = request.root.find("CONTENT")
    if request.query != "INVENTORY" or content is None:
        raise click.ClickException("Not an inventory (no <QUERY>INVENTORY</QUERY> with <CONTENT>).")
    with acting_as(Actor(f"cli:agents-inventory:{site}")):
        device = services.ingest(site, request.device_id, content, agent="cli")
        counts = device.last_run.counts
        checkpoint()
    shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    click.echo(f"device {request.device_id}: CI {device.ci_id}; {shown}")


@click.group("discover")
def discover_cli():
    """Import discovery scans."""


@discover_cli.command("nmap")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def discover_nmap_command(path):
    """Import an `nmap -oX` scan: matched hosts are recorded as seen, the others listed as unmanaged."""
    from integrations.agents import nmap

    with acting_as(Actor("cli:discover-nmap")):
        try:
            job = nmap.import_scan(Path(path).read_bytes())
        except Invalid as exc:
            raise click.ClickException(exc.detail)
        checkpoint()
    click.echo(f"nmap run {job.id}: " + ", ".join(f"{k} {v}" for k, v in sorted(job.counts.items())))
    for host in job.results:
        if host["status"] != "matched":
            services = ", ".join(f"{s['port']}/{s['protocol']} {s['service']}".strip() for s in host["services"])
            guess = host["os_guesses"][0] if host["os_guesses"] else None
            os_text = f"; OS {guess['name']} ({guess['accuracy']}%)" if guess else ""
            addresses = ", ".join(host["ip_addresses"] + ([host["mac_address"]] if host["mac_address"] else []))
            click.echo(f"{host['status']}: {addresses} {' '.join(host['hostnames'])} [{services}]{os_text}")


def register(app) -> None:
    app.cli.add_command(agents_cli)
    app.cli.add_command(discover_cli)
