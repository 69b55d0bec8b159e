"""Notifications out: ticket events read from the change log (the outbox), one OutboundEmail per
(event, recipient), sent over SMTP with loop-proof headers and threading headers.

Who gets what: the requester on creation, on a public comment and on resolution; the assignee and
the team on assignment. Never the person who caused the event, never an address that bounced, never
Cairn's own addresses or no-reply/mailer-daemon addresses, and at most CAIRN_MAIL_NOTIFY_LIMIT per
recipient and ticket in ten minutes (past that: recorded as ``suppressed``, which ends reply loops
with auto-responders that got past the intake's checks).
"""

from __future__ import annotations

import html
import logging
import smtplib
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from cairn.audit.models import ChangeLog
from cairn.audit.services import Cursor, feed
from cairn.auth.models import Team, User
from cairn.db import MAX_ID, db, id_in, utcnow
from cairn.jobs.models import OutboxCursor
from cairn.outbox import Consumer, PassResult, held_back, retry_at
from cairn.uow import checkpoint
from integrations.email import rules, settings
from integrations.email.models import OutboundEmail
from integrations.email.threading import new_message_id, thread_ids
from tickets.models import Ticket, TicketComment

log = logging.getLogger("cairn.mail")
CURSOR_NAME = "notifications"
BACKFILL = timedelta(hours=1)
# Seconds before the 2nd, 3rd, ... try of a notification the SMTP server did not take; then failed.
RETRY_SCHEDULE = (60, 300, 1800, 7200)
SEND_LEASE = timedelta(minutes=5)
SEND_JOB = "integrations.email.tasks.send_notification"
SEND_BATCH = 25
REPLY_MARKER = "##- Please type your reply above this line -##"


def _cursor() -> OutboxCursor:
    stmt = select(OutboxCursor).where(OutboxCursor.name == CURSOR_NAME)
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = db.session.scalar(stmt)
    if row is None:
        try:
            with db.session.begin_nested():
                row = OutboxCursor(name=CURSOR_NAME, txid=0, change_id=0, started_at=utcnow() - BACKFILL)
                db.session.add(row)
        except IntegrityError:
            row = db.session.scalar(stmt)
    return row


WATCHED_ACTIONS = ["create", "comment", "transition", "update"]


def dispatch_pass(limit: int = 500) -> PassResult:
    """Read ticket events after the cursor, record the notifications they call for, move the cursor
    (the outbox consumer's pass; the kernel commits after it)."""
    cursor = _cursor()
    after = Cursor(cursor.txid, cursor.change_id)
    changes, next_cursor = feed(
        after, limit=limit, object_types=["ticket"], actions=WATCHED_ACTIONS, since=cursor.started_at
    )
    ticket_ids = {c.object_id for c in changes if 0 < c.object_id <= MAX_ID}
    if ticket_ids:  # one query for the page's tickets; the per-change reads then hit the session
        db.session.scalars(select(Ticket).where(id_in(Ticket.id, ticket_ids))).all()
    created = 0
    for change in changes:
        for event, recipient, body in _notifications(change):
            row = _record(change, event, recipient, body)
            created += row is not None and row.status == "queued"
    cursor.txid, cursor.change_id = next_cursor.txid, next_cursor.id
    db.session.flush()
    full = len(changes) == limit
    return PassResult(created, full, not full and held_back(next_cursor, ["ticket"]))


def dispatch() -> int:
    """Record the notifications for every ticket event not seen yet (`cairn mail dispatch`)."""
    created = 0
    while True:
        result = dispatch_pass()
        checkpoint()
        created += result.created
        if not result.more:
            return created


def _users(*ids) -> list[User]:
    return [u for u in (db.session.get(User, i) for i in ids if i) if u is not None and u.active]


def _team_addresses(team_id: int | None) -> list[str]:
    team = db.session.get(Team, team_id) if team_id else None
    if team is None:
        return []
    if team.email:
        return [team.email.lower()]
    return [m.email for m in team.members if m.active]


def _notifications(change: ChangeLog):
    """(event, recipient, body) for one ticket change. An event describes the change it records, not
    the ticket as it is today: who is told, and what, come from the values the change-log row
    recorded (or, for a value the row does not carry, the value the ticket had at that moment)."""
    ticket = db.session.get(Ticket, change.object_id) if 0 < change.object_id <= MAX_ID else None
    if ticket is None:
        return
    changes = change.changes or {}

    def then(key):
        return _value_then(change, ticket, key)

    out: list[tuple[str, str, str]] = []
    if change.action == "create":
        description = then("description") or ""
        assignee_id, team_id = then("assignee_id"), then("team_id")
        out += [
            ("created", u.email, f"Your ticket {ticket.number} was opened.\n\n{description}")
            for u in _users(then("requester_id"))
        ]
        text = _assigned_text(ticket, assignee_id, team_id, description)
        out += [("assigned", u.email, text) for u in _users(assignee_id)]
        out += [("assigned", a, text) for a in _team_addresses(team_id)]
    elif change.action == "comment":
        internal = (changes.get("internal") or [None, True])[1]
        comment_id = (changes.get("comment_id") or [None, None])[1]
        comment = db.session.get(TicketComment, comment_id) if comment_id else None
        if not internal and comment is not None:
            text = f"{comment.author_label} wrote on {ticket.number}:\n\n{comment.body}"
            out += [("commented", u.email, text) for u in _users(then("requester_id")) if u.id != comment.author_id]
    elif change.action == "transition":
        if (changes.get("state") or [None, None])[1] == "resolved":
            note = then("resolution_note") or ""
            out += [
                ("resolved", u.email, f"{ticket.number} was resolved.\n\n{note}") for u in _users(then("requester_id"))
            ]
    elif change.action == "update":
        new_assignee = (changes.get("assignee_id") or [None, None])[1]
        new_team = (changes.get("team_id") or [None, None])[1]
        if new_assignee or new_team:
            text = _assigned_text(ticket, then("assignee_id"), then("team_id"), then("description") or "")
            if new_assignee:
                out += [("assigned", u.email, text) for u in _users(new_assignee)]
            if new_team:
                out += [("assigned", a, text) for a in _team_addresses(new_team)]
        escalation = (changes.get("escalation") or [None, None])[1]
        if escalation:  # tickets.slas.scan: the rule's recipients, resolved when it fired
            text = f"{ticket.number} was escalated by the rule {escalation['rule']} ({escalation['condition']})."
            out += [("escalated", address, f"{text}\n\n{ticket.title}") for address in escalation.get("notify", [])]
    actor = db.session.get(User, change.actor_id) if change.actor_id else None
    seen = set()
    for event, recipient, body in out:
        recipient = recipient.lower()
        # The person who caused the event needs no mail about it, except the confirmation of a
        # ticket they opened (it carries the number and the thread to reply to).
        if recipient in seen or (event != "created" and actor is not None and actor.email == recipient):
            continue
        seen.add(recipient)
        yield event, recipient, body


def _value_then(change: ChangeLog, ticket: Ticket, key: str):
    """``key`` of the ticket as ``change`` left it: what the row recorded; for a creation, None when
    it recorded nothing (its snapshot leaves empty columns out); otherwise the value before the next
    recorded change of ``key``, or today's value when it has not changed since."""
    recorded = (change.changes or {}).get(key)
    if recorded is not None:
        return recorded[1]
    if change.action == "create":
        return None
    later = db.session.scalars(
        select(ChangeLog.changes)
        .where(ChangeLog.object_type == "ticket", ChangeLog.object_id == change.object_id, ChangeLog.id > change.id)
        .order_by(ChangeLog.id)
    )
    for changes in later:
        if changes and key in changes:
            return changes[key][0]
    return getattr(ticket, key)


def _assigned_text(ticket: Ticket, assignee_id: int | None, team_id: int | None, description: str) -> str:
    assignee = db.session.get(User, assignee_id) if assignee_id else None
    team = db.session.get(Team, team_id) if team_id else None
    who = assignee.email if assignee else (team.name if team else "you")
    return f"{ticket.number} is assigned to {who}.\n\n{description}"


def _skip_reason(recipient: str, ticket_id: int) -> str | None:
    if not settings.get("CAIRN_MAIL_SMTP_HOST"):
        return "CAIRN_MAIL_SMTP_HOST is not set"
    if recipient == settings.own_address() or recipient in settings.routes():
        return "Cairn's own address"
    if rules.NOISE_SENDERS.match(recipient) or rules.NOREPLY_SENDERS.match(recipient):
        return "no-reply or mailer-daemon address"
    if rules.undeliverable(recipient):
        return "address bounced (undeliverable)"
    limit = settings.get_int("CAIRN_MAIL_NOTIFY_LIMIT")
    recent = db.session.scalar(
        select(func.count()).where(
            OutboundEmail.ticket_id == ticket_id,
            OutboundEmail.recipient == recipient,
            OutboundEmail.status.in_(("queued", "sent")),
            OutboundEmail.created_at >= utcnow() - timedelta(minutes=10),
        )
    )
    if limit > 0 and recent >= limit:
        return f"rate limit: {limit} notifications in 10 minutes"
    return None


def _record(change: ChangeLog, event: str, recipient: str, body: str) -> OutboundEmail | None:
    ticket = db.session.get(Ticket, change.object_id)
    reason = _skip_reason(recipient, ticket.id)
    row = OutboundEmail(
        ticket_id=ticket.id,
        change_id=change.id,
        event=event,
        recipient=recipient[:320],
        message_id=new_message_id(ticket.id),
        subject=f"[{ticket.number}] {ticket.title}"[:300],
        body_text=body[:100_000],
        status="suppressed" if reason else "queued",
        reason=reason,
        attempts=0,
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # dispatched already (two dispatchers raced): one row per event and recipient
        return None
    return row


def queue_due(limit: int = 500) -> int:
    """Queue send jobs for the notifications whose time has come (new, retry due, job lost), one
    job per batch of SEND_BATCH; each is leased for a while first, so the next sweep does not
    queue it again while it waits."""
    from cairn.jobs import enqueue_now  # the rows are committed: queue them now

    now = utcnow()
    ids = list(
        db.session.scalars(
            select(OutboundEmail.id)
            .where(
                OutboundEmail.status == "queued",
                or_(OutboundEmail.next_attempt_at.is_(None), OutboundEmail.next_attempt_at <= now),
            )
            .order_by(OutboundEmail.id)
            .limit(limit)
        )
    )
    if not ids:
        return 0
    uses_redis = bool(current_app.config.get("REDIS_URL"))
    if uses_redis:
        db.session.execute(
            update(OutboundEmail).where(OutboundEmail.id.in_(ids)).values(next_attempt_at=now + SEND_LEASE)
        )
        checkpoint()
    queue_name = settings.get("CAIRN_MAIL_QUEUE")
    for start in range(0, len(ids), SEND_BATCH):
        batch = ids[start : start + SEND_BATCH]
        job = enqueue_now(SEND_JOB, *batch, job_id=f"cairn-mail-out-{batch[0]}", queue_name=queue_name)
        if uses_redis and job is None:  # Redis went away: let the next sweep have them
            db.session.execute(
                update(OutboundEmail)
                .where(OutboundEmail.id.in_(ids), OutboundEmail.status == "queued")
                .values(next_attempt_at=None)
            )
            checkpoint()
            break
    return len(ids)


def consumer() -> Consumer:
    """Notifications as an outbox consumer of the change log (ticket events)."""
    return Consumer(name=CURSOR_NAME, object_types=frozenset({"ticket"}), run_pass=dispatch_pass, queue_due=queue_due)


def build_message(row: OutboundEmail) -> EmailMessage:
    ticket = db.session.get(Ticket, row.ticket_id) if row.ticket_id else None
    own = settings.own_address()
    msg = EmailMessage()
    msg["From"] = own
    msg["To"] = row.recipient
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(row.created_at)
    msg["Message-ID"] = f"<{row.message_id}>"
    thread = [i for i in (thread_ids(ticket) if ticket else []) if i != row.message_id]
    if thread:
        msg["In-Reply-To"] = f"<{thread[-1]}>"
        msg["References"] = " ".join(f"<{i}>" for i in thread[-20:])
    msg["Reply-To"] = own
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["Precedence"] = "bulk"
    msg["X-Loop"] = own
    if ticket is not None:
        msg["X-Cairn-Ticket"] = ticket.number
    footer = ""
    if ticket is not None:
        footer = f"\n\n--\n{ticket.number}: {ticket.title}\nState: {ticket.state}, priority P{ticket.priority}"
    text = f"{REPLY_MARKER}\n\n{row.body_text}{footer}\n"
    msg.set_content(text)
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in text.split("\n\n") if p)
    msg.add_alternative(f"<!doctype html><html><body>{paragraphs}</body></html>", subtype="html")
    return msg


def send(outbound_id: int) -> str | None:
    """Send one queued notification over SMTP; transient failures stay queued (retried), permanent
    ones and the fifth failure are ``failed``."""
    row = db.session.get(OutboundEmail, outbound_id) if 0 < outbound_id <= MAX_ID else None
    if row is None or row.status != "queued":
        return None
    host = settings.get("CAIRN_MAIL_SMTP_HOST")
    if not host:
        row.status, row.reason = "suppressed", "CAIRN_MAIL_SMTP_HOST is not set"
        db.session.flush()
        return row.status
    row.attempts = (row.attempts or 0) + 1
    msg = build_message(row)
    try:
        _smtp_send(msg, row.recipient)
    except smtplib.SMTPRecipientsRefused as exc:
        row.status, row.reason = "failed", f"refused: {exc.recipients}"[:500]
    except (smtplib.SMTPException, OSError) as exc:
        row.reason = f"{type(exc).__name__}: {exc}"[:500]
        row.next_attempt_at = retry_at(row.attempts, RETRY_SCHEDULE)
        if row.next_attempt_at is None:
            row.status = "failed"
        log.warning("notification %s not sent (attempt %s): %s", row.id, row.attempts, exc)
    else:
        row.status, row.reason, row.sent_at = "sent", None, utcnow()
    db.session.flush()
    return row.status


def _smtp_send(msg: EmailMessage, recipient: str) -> None:
    host = settings.get("CAIRN_MAIL_SMTP_HOST")
    port = settings.get_int("CAIRN_MAIL_SMTP_PORT")
    timeout = settings.get_float("CAIRN_MAIL_SMTP_TIMEOUT")
    tls = str(settings.get("CAIRN_MAIL_SMTP_TLS") or "").lower()
    smtp_class = smtplib.SMTP_SSL if tls == "ssl" else smtplib.SMTP
    with smtp_class(host, port, timeout=timeout) as smtp:
        if tls == "starttls":
            smtp.starttls()
        user = settings.get("CAIRN_MAIL_SMTP_USER")
        if user:
            smtp.login(user, settings.get("CAIRN_MAIL_SMTP_PASSWORD"))
        smtp.send_message(msg, from_addr=settings.own_address(), to_addrs=[recipient])


def install() -> None:
    """Event pipeline: notifications become an outbox consumer of the change log."""
    from cairn.outbox import register

    register(consumer())
