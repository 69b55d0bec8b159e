"""Which ticket a mail belongs to: our own Message-IDs, the messages we received, the subject tag.

Rules (no hijacking): a mail whose ``In-Reply-To``/``References`` name a message we sent or received
for a ticket belongs to that ticket, whoever sends it (people Cc'd on the thread reply too). A subject
tag ``[INC0000042]`` alone only threads when the sender is a staff user or the ticket's requester;
otherwise the mail opens a new ticket, linked as ``related`` only when the sender may see the tagged
ticket (quoting a number takes over nothing, and links a requester's ticket to nothing it may not
see: the link would show that ticket on theirs). For the same reason a reply into the thread of a
closed ticket the sender may not see opens a new ticket linked to nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from cairn.auth.models import User
from cairn.auth.roles import REQUESTER
from cairn.db import MAX_ID, db
from integrations.email import settings
from integrations.email.models import InboundEmail, OutboundEmail
from integrations.email.parse import ParsedMail
from tickets.models import NUMBER_PREFIXES, Ticket
from tickets.services import can_see_ticket
from tickets.workflow import CLOSED_STATES

# [INC0000042], also with spaces or a "#" (INC#0000042) as some clients and people write it.
TAG = re.compile(r"\[\s*(" + "|".join(NUMBER_PREFIXES.values()) + r")\s*#?\s*(\d{1,9})\s*\]", re.I)
PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs|antw|r|tr|rif|odp|pd|vb|ynt|fw)(\[\d+\])?\s*:\s*)+", re.I)
OWN_ID = re.compile(r"^cairn\.(\d{1,10})\.([0-9a-z]{1,20})\.([0-9a-f]{16})@", re.I)


def _signature(ticket_id: int, nonce: str) -> str:
    key = str(current_app.config.get("SECRET_KEY", "")).encode()
    return hmac.new(key, f"{ticket_id}.{nonce}".encode(), hashlib.sha256).hexdigest()[:16]


def new_message_id(ticket_id: int) -> str:
    """A Message-ID (without brackets) that names the ticket, signed so it can't be forged."""
    nonce = secrets.token_hex(6)
    return f"cairn.{ticket_id}.{nonce}.{_signature(ticket_id, nonce)}@{settings.own_domain()}"


def own_ticket_of(message_id: str) -> int | None:
    """The ticket an id of ours names (signature checked), else None."""
    match = OWN_ID.match(message_id)
    if not match:
        return None
    ticket_id, nonce, signature = int(match.group(1)), match.group(2).lower(), match.group(3).lower()
    if hmac.compare_digest(signature, _signature(ticket_id, nonce)):
        return ticket_id
    return None


def is_own_message(message_id: str | None) -> bool:
    if not message_id:
        return False
    if own_ticket_of(message_id) is not None:
        return True
    if not message_id.lower().endswith("@" + settings.own_domain()):
        return False  # every id we send is on our domain
    return db.session.scalar(select(OutboundEmail.id).where(OutboundEmail.message_id == message_id)) is not None


def clean_subject(subject: str) -> str:
    """The subject without reply/forward prefixes (Re:, Fwd:, AW:, SV: ...) and our tag."""
    text = subject
    for _ in range(3):
        text = TAG.sub("", PREFIX.sub("", text)).strip()
    return text


def subject_tag(subject: str) -> str | None:
    match = TAG.search(subject)
    if not match:
        return None
    return f"{match.group(1).upper()}{int(match.group(2)):07d}"


@dataclass
class ThreadMatch:
    ticket: Ticket
    via: str  # "references" | "subject"


def by_references(mail: ParsedMail) -> Ticket | None:
    """The ticket a message we sent or received names, newest reference first."""
    ids = list(dict.fromkeys(list(reversed(mail.in_reply_to)) + list(reversed(mail.references))))
    ids = [i for i in ids if i != mail.message_id][:50]
    if not ids:
        return None
    sent = dict(
        db.session.execute(
            select(OutboundEmail.message_id, OutboundEmail.ticket_id).where(
                OutboundEmail.message_id.in_(ids), OutboundEmail.ticket_id.is_not(None)
            )
        ).all()
    )
    received = dict(
        db.session.execute(
            select(InboundEmail.message_id, InboundEmail.ticket_id).where(
                InboundEmail.message_id.in_(ids), InboundEmail.ticket_id.is_not(None)
            )
        ).all()
    )
    for message_id in ids:
        ticket_id = sent.get(message_id) or received.get(message_id) or own_ticket_of(message_id)
        if ticket_id and 0 < ticket_id <= MAX_ID:
            ticket = db.session.get(Ticket, ticket_id)
            if ticket is not None:
                return ticket
    return None


def by_subject(mail: ParsedMail) -> Ticket | None:
    number = subject_tag(mail.subject)
    if number is None:
        return None
    return db.session.scalar(select(Ticket).where(Ticket.number == number))


def may_follow_up(ticket: Ticket, sender: User | None) -> bool:
    """A subject tag threads only for a staff user (watchers are staff) or a requester who may see
    the ticket (its own: a requester left watching a ticket since given to someone else may not)."""
    if sender is None:
        return False
    return sender.role != REQUESTER or can_see_ticket(sender, ticket)


def find_thread(mail: ParsedMail, sender: User | None) -> tuple[Ticket | None, Ticket | None]:
    """(ticket to follow up, ticket only to link as related). The second is set when the subject
    names a ticket the sender has no part in but may see; a ticket it may not see is never
    returned for linking (nor a closed one its references name, which intake would link)."""
    ticket = by_references(mail)
    if ticket is not None:
        if ticket.state in CLOSED_STATES and not can_see_ticket(sender, ticket):
            return None, None
        return ticket, None
    tagged = by_subject(mail)
    if tagged is None:
        return None, None
    if may_follow_up(tagged, sender):
        return tagged, None
    if can_see_ticket(sender, tagged):
        return None, tagged
    return None, None


def thread_ids(ticket: Ticket, limit: int = 20) -> list[str]:
    """Message-IDs of the ticket's thread, oldest first (for References of a notification)."""
    received = db.session.scalars(
        select(InboundEmail.message_id)
        .where(InboundEmail.ticket_id == ticket.id, InboundEmail.message_id.is_not(None))
        .order_by(InboundEmail.id)
        .limit(1)
    ).all()
    sent = db.session.scalars(
        select(OutboundEmail.message_id)
        .where(OutboundEmail.ticket_id == ticket.id, OutboundEmail.status == "sent")
        .order_by(OutboundEmail.id.desc())
        .limit(limit)
    ).all()
    return list(dict.fromkeys([*received, *reversed(sent)]))
