"""Mail commands: `cairn mailgate`, `cairn lmtpd`, `cairn imap-poll`, `cairn mail reprocess|sweep|dispatch`."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from cairn.audit.context import Actor, acting_as
from cairn.uow import checkpoint

EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75
mail_cli = AppGroup("mail", help="Inbound mail: reprocess, sweep; notifications: dispatch.")


def _post(url: str, raw: bytes, token: str | None, kind: str | None, mailbox: str | None) -> int:
    query = "&".join(f"{k}={urllib.parse.quote(v)}" for k, v in (("kind", kind), ("mailbox", mailbox)) if v)
    endpoint = url.rstrip("/") + "/api/v1/inbound-email" + (f"?{query}" if query else "")
    req = urllib.request.Request(endpoint, data=raw, method="POST", headers={"Content-Type": "message/rfc822"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            click.echo(response.read().decode("utf-8", "replace"), err=True)
            return EX_OK
    except urllib.error.HTTPError as exc:
        click.echo(f"mailgate: {exc.code} {exc.read()[:500].decode('utf-8', 'replace')}", err=True)
        # 4xx (bad or oversized message, bad token) will not get better by retrying... except 408/429.
        return EX_DATAERR if 400 <= exc.code < 500 and exc.code not in (401, 403, 408, 429) else EX_TEMPFAIL
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"mailgate: {endpoint} unreachable: {exc}", err=True)
        return EX_TEMPFAIL


@click.command("mailgate")
@click.option("--kind", type=click.Choice(["incident", "request"]), default=None, help="Kind of a new ticket.")
@click.option("--url", default=None, help="Post to this Cairn (HTTP source) instead of the database.")
@click.option("--token", default=None, envvar="CAIRN_MAIL_GATE_TOKEN", help="API token for --url.")
@click.option("--mailbox", default=None, help="Dedup scope (default: default).")
def mailgate_command(kind, url, token, mailbox):
    """Read one raw message on stdin: exit 0 when stored, 75 (EX_TEMPFAIL) when it could not be."""
    try:
        raw = sys.stdin.buffer.read()
    except OSError:
        sys.exit(EX_TEMPFAIL)
    if not raw.strip():
        click.echo("mailgate: empty message", err=True)
        sys.exit(EX_DATAERR)
    if url:
        sys.exit(_post(url, raw, token, kind, mailbox))
    try:
        from integrations.email import intake

        with current_app.app_context(), acting_as(Actor("mail:mailgate")):
            try:
                row, created = intake.accept(
                    raw,
                    source="mailgate",
                    kind=kind,
                    mailbox=mailbox,
                    envelope_from=os.environ.get("SENDER"),
                    envelope_to=[r for r in [os.environ.get("RECIPIENT")] if r],
                )
            except intake.TooLarge as exc:
                click.echo(f"mailgate: {exc}", err=True)
                sys.exit(EX_DATAERR)
            click.echo(f"mailgate: {'stored' if created else 'already stored'} as {row.id}", err=True)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - database down, anything: the MTA must keep the message
        click.echo(f"mailgate: could not store the message ({type(exc).__name__}: {exc}); try again later", err=True)
        sys.exit(EX_TEMPFAIL)
    sys.exit(EX_OK)


@click.command("lmtpd")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2424, show_default=True, type=int)
@click.option("--smtp", is_flag=True, help="Speak SMTP instead of LMTP.")
@click.option("--mailbox", default=None, help="Dedup scope (default: default).")
@with_appcontext
def lmtpd_command(host, port, smtp, mailbox):
    """Listen for mail: 250 only once a message is stored, 451 when it can't be."""
    import signal
    import threading

    from integrations.email.lmtpd import make_controller

    controller = make_controller(current_app._get_current_object(), host, port, lmtp=not smtp, mailbox=mailbox)
    controller.start()
    click.echo(f"lmtpd: {'SMTP' if smtp else 'LMTP'} on {host}:{port}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@click.command("imap-poll")
@with_appcontext
def imap_poll_command():
    """Fetch new mail from the configured IMAP mailbox once (CAIRN_MAIL_IMAP_*)."""
    from integrations.email import imap, settings

    if not settings.get("CAIRN_MAIL_IMAP_HOST"):
        click.echo("error: CAIRN_MAIL_IMAP_HOST is not set", err=True)
        sys.exit(1)
    with acting_as(Actor("mail:imap")):
        result = imap.poll(imap.ImapAccount.from_settings())
    click.echo(json.dumps(result))


@mail_cli.command("reprocess")
@click.argument("email_id", type=int, required=False)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed message.")
def reprocess_command(email_id, all_failed):
    """Retry one failed or ignored message by id, or every failed one."""
    from cairn.db import db
    from cairn.errors import DomainError
    from integrations.email import intake

    if (email_id is None) == (not all_failed):
        click.echo("error: give a message id or --failed", err=True)
        sys.exit(2)
    ids = intake.failed_ids() if all_failed else [email_id]
    with acting_as(Actor("cli:mail-reprocess")):
        for one in ids:
            try:
                row = intake.reprocess(one)
            except DomainError as exc:
                click.echo(f"error: {exc.detail}", err=True)
                sys.exit(1)
            checkpoint()
            intake.queue_processing(row)
            db.session.refresh(row)
            click.echo(f"{row.id}\t{row.status}\t{row.reason or ''}")
    click.echo(f"reprocessed {len(ids)} message(s)")


@mail_cli.command("sweep")
def sweep_command():
    """Queue stored mail that was never queued (what the periodic sweeper does)."""
    from integrations.email import tasks

    with acting_as(Actor("cli:mail-sweep")):
        click.echo(f"queued {tasks.sweep_inbound()} message(s)")


@mail_cli.command("dispatch")
def dispatch_command():
    """Record and send the notifications for new ticket events now."""
    from cairn.jobs import execute

    click.echo(f"queued {execute('integrations.email.tasks.dispatch_notifications')} notification(s)")


def register(app) -> None:
    app.cli.add_command(mailgate_command)
    app.cli.add_command(lmtpd_command)
    app.cli.add_command(imap_poll_command)
    app.cli.add_command(mail_cli)
