"""The one store-then-process service every mail source calls.

``accept`` stores the raw bytes (size-capped) under a unique (mailbox, Message-ID or header hash),
commits, and only then queues ``process_inbound`` by id. A message delivered twice is stored once.
When Redis is down the row stays ``queued`` and ``sweep`` queues it later. ``process`` turns one
stored message into a ticket or a comment; any error marks that message ``failed`` with the reason
and never stops the others; ``reprocess`` retries failed or ignored ones.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import undefer

from cairn.audit.context import Actor, acting_as
from cairn.audit.mixin import record
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Conflict, DomainError, NotFound
from cairn.jobs import durable
from cairn.uow import checkpoint
from integrations.email import rules, settings
from integrations.email.models import InboundEmail
from integrations.email.parse import ParsedMail, content_fingerprint, message_key, parse_message, strip_quoted
from integrations.email.threading import clean_subject, find_thread
from tickets import services as tickets
from tickets.workflow import CLOSED_STATES

log = logging.getLogger("cairn.mail")
PROCESS_JOB = "integrations.email.tasks.process_inbound"
SOURCES = ("http", "mailgate", "lmtp", "smtp", "imap", "cli")
MAX_COMMENT_CHARS = 20_000
MAX_TEXT_CHARS = 18_000


class TooLarge(Exception):
    """The message is over CAIRN_MAIL_MAX_BYTES: refuse it permanently (the sender gets a bounce)."""


def max_bytes() -> int:
    return settings.get_int("CAIRN_MAIL_MAX_BYTES")


# ---------------------------------------------------------------------------------------------
# Storing


def store(
    raw: bytes,
    *,
    source: str,
    mailbox: str | None = None,
    kind: str | None = None,
    envelope_from: str | None = None,
    envelope_to: list[str] | None = None,
) -> tuple[InboundEmail, bool]:
    """Store the raw message (not committed); returns (row, created). A known one is returned as is."""
    reused_from = None
    if len(raw) > max_bytes():
        raise TooLarge(f"message of {len(raw)} bytes is over the limit of {max_bytes()} bytes")
    if not raw.strip():
        raise ValueError("empty message")
    mailbox = (mailbox or "default")[:255]
    key, message_id = message_key(raw)
    existing = _existing(mailbox, key)
    if existing is not None and message_id is not None:
        # A re-delivery only when the content agrees too: some mailers reuse Message-IDs.
        fingerprint = content_fingerprint(raw)
        if content_fingerprint(_raw_of(existing)) != fingerprint:
            first = existing
            key = f"{key[:200]}#{fingerprint[:16]}"
            existing = _existing(mailbox, key)
            if existing is None:
                log.warning("mail: Message-ID %s reused by different content (first: mail %s)", message_id, first.id)
                reused_from = first
    if existing is not None:
        return existing, False
    row = InboundEmail(
        mailbox=mailbox,
        message_key=key,
        message_id=message_id,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        raw=raw,
        source=source[:20],
        kind_hint=kind if kind in ("incident", "request") else None,
        envelope_from=(envelope_from or None) and envelope_from[:320],
        envelope_to=",".join(envelope_to or [])[:2000] or None,
        status="queued",
        attempts=0,
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # the same message stored by another source or worker a moment ago
        existing = _existing(mailbox, key)
        if existing is None:
            raise
        return existing, False
    if reused_from is not None:
        record(
            db.session,
            row,
            "message_id_reused",
            {"message_id": [None, message_id], "first_email_id": [None, reused_from.id]},
            f"inbound e-mail {row.id}: Message-ID reused by different content (first: {reused_from.id})",
        )
    return row, True


def _raw_of(row: InboundEmail) -> bytes:
    return db.session.scalar(select(InboundEmail.raw).where(InboundEmail.id == row.id)) or b""


def _existing(mailbox: str, key: str) -> InboundEmail | None:
    return db.session.scalar(
        select(InboundEmail).where(InboundEmail.mailbox == mailbox, InboundEmail.message_key == key)
    )


def accept(raw: bytes, **kwargs) -> tuple[InboundEmail, bool]:
    """Store and commit (mail is stored first: a sender is told 'accepted' only once it is), then
    queue processing. Raises TooLarge, or database errors when it could not store (the caller
    answers 'try again later'). Returns (row, created)."""
    row, created = store(raw, **kwargs)
    if created:
        queue_processing(row)
    checkpoint()
    return row, created


def queue_processing(row: InboundEmail) -> None:
    """Mark the row queued now, in the transaction that stores it, and queue the job once that
    commits (a durable job: see cairn/jobs/durable.py)."""
    durable.queue_row(row, PROCESS_JOB, job_id=f"cairn-mail-{row.id}")


def stale_ids(limit: int = 500) -> list[int]:
    """Stored mail never put in the queue (Redis was down), or queued long ago and still not
    processed (its job was lost, or died with its worker: processing is one transaction)."""
    stale = utcnow() - timedelta(seconds=settings.get_int("CAIRN_MAIL_REQUEUE_SECONDS"))
    return list(
        db.session.scalars(
            select(InboundEmail.id)
            .where(
                InboundEmail.status == "queued",
                or_(InboundEmail.enqueued_at.is_(None), InboundEmail.enqueued_at < stale),
            )
            .order_by(InboundEmail.id)
            .limit(limit)
        )
    )


def requeue(email_id: int) -> None:
    row = db.session.get(InboundEmail, email_id)
    if row is not None and row.status == "queued":
        queue_processing(row)


def sweep() -> int:
    """Queue stored mail whose job was lost (`cairn mail sweep`; the durable sweep does it every
    minute). Queuing one twice is harmless: the job id dedupes waiting jobs and processing skips
    what is not queued."""
    return durable.sweep(only="mail").get("mail", 0)


def install() -> None:
    """Event pipeline: inbound mail is a durable job."""
    durable.register(durable.DurableKind("mail", stale_ids, requeue))


def get_inbound(email_id: int) -> InboundEmail:
    row = db.session.get(InboundEmail, email_id) if 0 < email_id <= MAX_ID else None
    if row is None:
        raise NotFound(f"No inbound e-mail with id {email_id}.")
    return row


def reprocess(email_id: int) -> InboundEmail:
    """Put a failed or ignored message back in the queue (processed ones would double a ticket)."""
    row = get_inbound(email_id)
    if row.status not in ("failed", "ignored"):
        raise Conflict(f"Mail {email_id} is {row.status}; only failed or ignored mail is reprocessed.")
    row.status, row.reason, row.outcome = "queued", None, None
    queue_processing(row)
    return row


def failed_ids(limit: int = 10_000) -> list[int]:
    return list(
        db.session.scalars(
            select(InboundEmail.id).where(InboundEmail.status == "failed").order_by(InboundEmail.id).limit(limit)
        )
    )


# ---------------------------------------------------------------------------------------------
# Processing


def process(email_id: int) -> str | None:
    """Turn one stored message into a ticket or comment, or mark it ignored or failed. Never raises
    for a bad message: its error is its own ``reason``. Returns the new status (None: nothing to do)."""
    stmt = select(InboundEmail).where(InboundEmail.id == email_id).options(undefer(InboundEmail.raw))
    if db.session.get_bind().dialect.name == "postgresql":
        # A second worker given the same id skips it instead of waiting for the first.
        stmt = stmt.with_for_update(skip_locked=True)
    row = db.session.scalar(stmt)
    if row is None or row.status != "queued":
        return None
    # The row is written once, after the work (one UPDATE, one change-log row): the work itself
    # runs in a savepoint that a failure rolls back alone.
    seen: dict = {}
    try:
        with db.session.begin_nested():
            result = _handle(row, seen)
    except Exception as exc:  # noqa: BLE001 - one bad message must never block the queue
        log.warning("mail %s failed: %s", email_id, exc, exc_info=not isinstance(exc, DomainError))
        detail = exc.detail if isinstance(exc, DomainError) else str(exc)
        result = {"status": "failed", "reason": f"{type(exc).__name__}: {detail}"[:500]}
    values = {"status": "processed", "reason": None, "outcome": None, "ticket_id": None, "comment_id": None}
    values.update(seen, **result, attempts=(row.attempts or 0) + 1, processed_at=utcnow())
    for key, value in values.items():
        setattr(row, key, value)
    db.session.flush()
    return row.status


def _ignored(reason: str) -> dict:
    return {"status": "ignored", "reason": reason[:500]}


def _handle(row: InboundEmail, seen: dict) -> dict:
    mail = parse_message(
        row.raw,
        html_max_bytes=settings.get_int("CAIRN_MAIL_HTML_MAX_BYTES"),
        html_seconds=settings.get_float("CAIRN_MAIL_HTML_SECONDS"),
    )
    seen.update(from_address=(mail.from_address or "")[:320] or None, subject=mail.subject[:300])
    reason = rules.noise_reason(mail, row.envelope_from)
    if reason is not None:
        if reason.startswith("bounce"):
            marked = rules.record_bounce(mail)
            if marked:
                reason += "; undeliverable: " + ", ".join(marked)
        return _ignored(reason)
    sender, reason = rules.sender_or_reason(mail)
    if reason is not None:
        return _ignored(reason)
    with acting_as(Actor(f"mail:{sender.email}"[:255], sender.id)):
        ticket, related = find_thread(mail, sender)
        if ticket is not None and ticket.state in CLOSED_STATES:
            ticket, related = None, ticket
        if ticket is not None:
            return _follow_up(row, mail, ticket, sender)
        if rules.over_rate_limit(sender.email):
            return _ignored(f"rate limit: over {settings.get_int('CAIRN_MAIL_RATE_LIMIT')} new tickets an hour")
        return _new_ticket(row, mail, sender, related)


def _attachment_plan(mail: ParsedMail) -> tuple[list, list[str]]:
    per_file = settings.get_int("CAIRN_MAIL_ATTACHMENT_MAX_BYTES")
    budget = settings.get_int("CAIRN_MAIL_ATTACHMENTS_MAX_BYTES")
    keep, skipped = [], []
    for item in mail.attachments:
        if len(item.data) > per_file or len(item.data) > budget:
            skipped.append(f"{item.filename} ({len(item.data)} bytes)")
            continue
        budget -= len(item.data)
        keep.append(item)
    return keep, skipped


def _body(text: str, skipped: list[str], mail: ParsedMail, row: InboundEmail) -> str:
    text = text.strip() or "(no text)"
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + f"\n\n(cut here: the whole message is inbound e-mail {row.id})"
    parts = [text]
    if mail.forwarded:
        parts.append("Forwarded: " + "; ".join(s or "(no subject)" for s in mail.forwarded))
    if skipped:
        parts.append("Attachments not stored (over the size limit): " + ", ".join(skipped))
    return "\n\n".join(parts)[:MAX_COMMENT_CHARS]


def _store_attachments(ticket, items, sender) -> None:
    for item in items:
        tickets.add_attachment(ticket, item.filename, item.content_type, item.data, sender)


def _follow_up(row: InboundEmail, mail: ParsedMail, ticket, sender) -> None:
    ticket = tickets.get_ticket(ticket.id, for_update=True)
    outcome = "comment"
    if ticket.state == "resolved":
        tickets.transition(
            ticket, "in_progress", {"note": f"Reopened by e-mail from {sender.email}"}, sender, system=True
        )
        outcome = "reopened"
    keep, skipped = _attachment_plan(mail)
    comment = tickets.add_comment(ticket, _body(strip_quoted(mail.text), skipped, mail, row), False, sender)
    _store_attachments(ticket, keep, sender)
    return {"ticket_id": ticket.id, "comment_id": comment.id, "outcome": outcome}


def _new_ticket(row: InboundEmail, mail: ParsedMail, sender, related) -> None:
    envelope_to = [a for a in (row.envelope_to or "").split(",") if a]
    kind, team = rules.route(mail, envelope_to, row.kind_hint)
    title = clean_subject(mail.subject) or next((ln.strip() for ln in mail.text.splitlines() if ln.strip()), "")
    keep, skipped = _attachment_plan(mail)
    data = {
        "kind": kind,
        "title": (title or "(no subject)")[:200],
        "description": _body(mail.text, skipped, mail, row),
        "requester_id": sender.id,
        "ci_ids": rules.named_cis(f"{mail.subject}\n{mail.text}"),
    }
    if team is not None:
        data["team_id"] = team.id
    # The route it came in by, for the routing rules that match on it (tickets.routing).
    recipients = [a.lower() for a in [*envelope_to, *mail.delivered_to, *mail.to, *mail.cc]]
    data["mail_route"] = next((a for a in recipients if a in settings.routes()), None)
    ticket = tickets.create_ticket(data, None)
    if related is not None:
        tickets.add_link(ticket, related.id, "related", None)
    exclude = {settings.own_address(), sender.email, *settings.routes()}
    for user in rules.cc_staff(mail, exclude):
        try:
            with db.session.begin_nested():
                tickets.add_watcher(ticket, user.id)
        except DomainError:
            pass
    _store_attachments(ticket, keep, sender)
    return {"ticket_id": ticket.id, "outcome": "related_ticket" if related is not None else "new_ticket"}


def current_config_summary() -> dict:
    """For `cairn mail status`: the settings in force (no secrets)."""
    return {k: settings.get(k) for k in settings.DEFAULTS if "PASSWORD" not in k} | {
        "REDIS_URL": bool(current_app.config.get("REDIS_URL"))
    }
