"""`cairn lmtpd`: an LMTP (or SMTP) listener on aiosmtpd that answers 250 only once the message is
stored (committed), 451 when it could not be (the MTA keeps it and retries), 552 when it is too big."""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from cairn.audit.context import Actor, acting_as
from cairn.db import db, sqlite_begin_immediate

log = logging.getLogger("cairn.mail")


class StoreHandler:
    """aiosmtpd handler: DATA is stored through intake.accept in a worker thread."""

    def __init__(self, app, source: str = "lmtp", mailbox: str | None = None):
        self.app = app
        self.source = source
        self.mailbox = mailbox

    def _store(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> int:
        from integrations.email import intake

        sqlite_begin_immediate.set(True)  # this worker thread writes
        with self.app.app_context(), acting_as(Actor(f"mail:{self.source}")):
            try:
                row, _ = intake.accept(
                    raw,
                    source=self.source,
                    mailbox=self.mailbox,
                    envelope_from=mail_from or "<>",
                    envelope_to=[r.lower() for r in rcpt_tos],
                )
                return row.id
            finally:
                db.session.remove()

    async def handle_DATA(self, server, session, envelope):
        from integrations.email.intake import TooLarge

        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        count = len(envelope.rcpt_tos) if self.source == "lmtp" else 1
        loop = asyncio.get_running_loop()
        try:
            email_id = await loop.run_in_executor(None, self._store, raw, envelope.mail_from, envelope.rcpt_tos)
        except TooLarge as exc:
            reply = f"552 5.3.4 {exc}"
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the MTA must keep the message
            log.warning("could not store a message from %s: %s", envelope.mail_from, exc)
            reply = "451 4.3.0 Could not store the message now; try again later"
        else:
            reply = f"250 2.0.0 Stored as {email_id}"
        # LMTP answers DATA once per recipient (RFC 2033); the message is stored once for all.
        return "\r\n".join([reply] * max(1, count))


class _Controller(Controller):
    def __init__(self, handler, *, lmtp: bool, data_size_limit: int, **kwargs):
        self.lmtp = lmtp
        self.data_size_limit = data_size_limit
        super().__init__(handler, **kwargs)

    def factory(self):
        cls = LMTP if self.lmtp else SMTP
        return cls(
            self.handler, data_size_limit=self.data_size_limit, decode_data=False, enable_SMTPUTF8=True, ident="Cairn"
        )


def make_controller(app, host: str, port: int, *, lmtp: bool = True, mailbox: str | None = None) -> Controller:
    """A started-on-demand listener (``.start()``/``.stop()``): used by the command and the tests."""
    with app.app_context():
        from integrations.email.intake import max_bytes

        limit = max_bytes()
    handler = StoreHandler(app, "lmtp" if lmtp else "smtp", mailbox)
    return _Controller(handler, lmtp=lmtp, data_size_limit=limit, hostname=host, port=port, ready_timeout=10)
