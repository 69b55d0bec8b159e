"""Rules applied to a parsed mail: noise and loops, routing, who the requester is, rate limits, CIs."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from cairn.auth.models import Team, User
from cairn.auth.services import create_user
from cairn.db import db, utcnow
from cairn.errors import Conflict
from cmdb.models import ConfigurationItem
from integrations.email import settings
from integrations.email.models import InboundEmail, MailAddressState, OutboundEmail
from integrations.email.parse import ParsedMail
from integrations.email.threading import is_own_message

NOISE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.I)
NOREPLY_SENDERS = re.compile(r"^(no-?reply|do-?not-?reply|noreply-[^@]*)@", re.I)
AUTO_REPLY_SUBJECTS = re.compile(
    r"^\s*(automatic reply|auto(matische)?[ -]?(reply|antwort|response)|out of (the )?office|"
    r"abwesenheitsnotiz|autosvar|fr[aå]nvaro|r[ée]ponse automatique|respuesta autom[aá]tica|"
    r"delivery status notification|undeliver(able|ed) mail|mail delivery (failed|failure))\b",
    re.I,
)
MAX_CI_TOKENS = 300
IDENTIFIER = re.compile(r"[0-9.-]")
TOKEN = re.compile(r"(?<![\w.-])[A-Za-z0-9](?:[A-Za-z0-9._-]{1,98}[A-Za-z0-9])?(?![\w-])")


def noise_reason(mail: ParsedMail, envelope_from: str | None) -> str | None:
    """Why this mail must make no ticket (auto-reply, bulk, loop, bounce), or None."""
    h = mail.headers
    if mail.dsn is not None or "x-failed-recipients" in h:
        return "bounce (delivery status notification)"
    if mail.message_id and is_own_message(mail.message_id):
        return "our own message"
    if "x-cairn-ticket" in h:
        return "our own notification"
    if mail.from_address and mail.from_address == settings.own_address():
        return "sent from Cairn's own address"
    if mail.from_address and mail.from_address in settings.routes():
        return "sent from one of Cairn's intake addresses"
    auto = h.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"auto-submitted: {auto}"[:200]
    precedence = h.get("precedence", "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"precedence: {precedence}"
    if "x-loop" in h:
        return "x-loop header"
    if "x-auto-response-suppress" in h:
        return "x-auto-response-suppress header"
    if "x-autoreply" in h or "x-autorespond" in h:
        return "auto-reply header"
    if mail.from_address and NOISE_SENDERS.match(mail.from_address):
        return "mailer-daemon sender"
    return_path = h.get("return-path", "").strip()
    if return_path == "<>" or envelope_from == "<>":
        return "null return path (automatic message)"
    if AUTO_REPLY_SUBJECTS.match(mail.subject or ""):
        return "auto-reply subject"
    return None


def record_bounce(mail: ParsedMail) -> list[str]:
    """Mark the recipients a DSN names (and the recipient of the bounced notification) undeliverable."""
    dsn = mail.dsn
    addresses = list(dsn.recipients) if dsn else []
    if dsn and dsn.action and dsn.action not in ("failed",):
        return []  # delayed/relayed/delivered: nothing to mark
    original = dsn.original_message_id if dsn else None
    if original:
        sent = db.session.scalar(select(OutboundEmail).where(OutboundEmail.message_id == original))
        if sent is not None:
            addresses.append(sent.recipient)
    for failed in mail.headers.get("x-failed-recipients", "").split(","):
        if "@" in failed:
            addresses.append(failed.strip().lower())
    marked = []
    for address in dict.fromkeys(a.lower() for a in addresses):
        state = db.session.scalar(select(MailAddressState).where(MailAddressState.address == address))
        if state is None:
            state = MailAddressState(address=address)
            db.session.add(state)
        state.undeliverable_at = utcnow()
        state.reason = f"bounced {dsn.status if dsn else ''}".strip()[:500]
        marked.append(address)
    db.session.flush()
    return marked


def undeliverable(address: str) -> bool:
    return (
        db.session.scalar(
            select(MailAddressState.id).where(
                MailAddressState.address == address.lower(), MailAddressState.undeliverable_at.is_not(None)
            )
        )
        is not None
    )


def route(mail: ParsedMail, envelope_to: list[str], kind_hint: str | None) -> tuple[str, Team | None]:
    """(ticket kind, team) by the recipient addresses and CAIRN_MAIL_ROUTES."""
    table = settings.routes()
    for address in [*envelope_to, *mail.delivered_to, *mail.to, *mail.cc]:
        target = table.get(address.lower())
        if target is None:
            continue
        kind, team_name = target
        team = db.session.scalar(select(Team).where(Team.name == team_name)) if team_name else None
        return (kind if kind in ("incident", "request") else "incident"), team
    kind = kind_hint or str(settings.get("CAIRN_MAIL_DEFAULT_KIND"))
    return (kind if kind in ("incident", "request") else "incident"), None


def find_sender(mail: ParsedMail) -> User | None:
    if not mail.from_address:
        return None
    return db.session.scalar(select(User).where(func.lower(User.email) == mail.from_address))


def sender_or_reason(mail: ParsedMail) -> tuple[User | None, str | None]:
    """The requester by From (auto-created when its domain is allowed), or why the mail is ignored."""
    if mail.from_count != 1 or not mail.from_address:
        return None, "no single valid sender address in From"
    user = find_sender(mail)
    if user is not None:
        return (user, None) if user.active else (None, "sender is a deactivated user")
    if NOREPLY_SENDERS.match(mail.from_address):
        return None, "no-reply sender"
    domain = mail.from_address.rpartition("@")[2]
    allowed = settings.allowed_domains()
    if "*" not in allowed and domain not in allowed:
        return None, f"sender domain {domain} is not allowed (CAIRN_MAIL_ALLOWED_DOMAINS)"[:200]
    name = (mail.from_name or "")[:200]
    try:
        with db.session.begin_nested():
            user = create_user(mail.from_address, "requester", name)
    except (IntegrityError, Conflict):  # another worker created them a moment ago
        user = find_sender(mail)
    return user, None


def over_rate_limit(address: str) -> bool:
    limit = settings.get_int("CAIRN_MAIL_RATE_LIMIT")
    if limit <= 0:
        return False
    since = utcnow() - timedelta(hours=1)
    count = db.session.scalar(
        select(func.count()).where(
            InboundEmail.from_address == address,
            InboundEmail.outcome.in_(("new_ticket", "related_ticket")),
            InboundEmail.processed_at >= since,
        )
    )
    return count >= limit


def cc_staff(mail: ParsedMail, exclude: set[str]) -> list[User]:
    """Staff users among the Cc'd addresses (requesters may watch only their own tickets)."""
    addresses = [a for a in dict.fromkeys(mail.cc + mail.to) if a not in exclude][:50]
    if not addresses:
        return []
    users = db.session.scalars(select(User).where(func.lower(User.email).in_(addresses), User.active.is_(True)))
    return [u for u in users if u.role != "requester"]


def named_cis(text: str) -> list[int]:
    """Known CIs whose asset tag, serial number or hostname appears as a whole word."""
    # Identifiers carry a digit, a hyphen or a dot (AST-10042, SN5CG1234XYZ, web-prod-01, db1.corp);
    # plain words are not looked up, which keeps the query small and cacheable.
    tokens = [t.lower() for t in TOKEN.findall(text[:100_000]) if len(t) >= 4 and IDENTIFIER.search(t)]
    tokens = list(dict.fromkeys(tokens))[:MAX_CI_TOKENS]
    if not tokens:
        return []
    ci = ConfigurationItem
    hostname = func.lower(ci.attributes["hostname"].as_string())
    stmt = (
        select(ci.id)
        .where(
            or_(func.lower(ci.asset_tag).in_(tokens), func.lower(ci.serial_number).in_(tokens), hostname.in_(tokens)),
            ci.status.not_in(("disposed",)),
        )
        .order_by(ci.id)
        .limit(20)
    )
    return list(db.session.scalars(stmt))
