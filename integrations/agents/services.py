"""Site tokens and the inventories agents post: authenticate, parse, reconcile, remember the device.

An inventory is reconciled inline, in the agent's request, through the discovery run of one item
(integrations/discovery.start_run: small runs are inline there too). An agent only forgets its
inventory once it got our reply, so a request whose worker dies before the commit loses nothing: the
agent sends it again on its next run. Inventories are reconciled one at a time per database
(a PostgreSQL transaction-scoped advisory lock; SQLite serialises writers anyway): two agents that
report the same new software product, or the same device twice, never create it twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets

from sqlalchemy import func, select, text

from cairn.auth.models import User
from cairn.auth.services import hash_token
from cairn.db import db, utcnow
from cairn.errors import Invalid
from integrations import discovery
from integrations.agents import mapping, protocol
from integrations.agents.models import AgentDevice, AgentToken

TOKEN_PREFIX = "cairn_agent_"
SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$")
LOCK_KEY = 0x6361_6972_6E41  # "cairnA": the advisory lock inventories take on PostgreSQL


def create_token(site: str) -> tuple[AgentToken, str]:
    """A token for ``site``; returns the row and the secret, which is stored nowhere."""
    if not SITE.match(site or ""):
        raise Invalid("The site is invalid.", errors={"site": ["Use letters, digits and . _ - (at most 60)."]})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AgentToken(
        site=site, prefix=secret[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 8], token_hash=hash_token(secret)
    )
    db.session.add(token)
    db.session.flush()
    return token, secret


def authenticate(secret: str) -> AgentToken | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = db.session.scalar(select(AgentToken).where(AgentToken.token_hash == hash_token(secret)))
    return token if token is not None and token.revoked_at is None else None


def source_of(site: str) -> str:
    return f"agents:{site}"


def receive(token: AgentToken, body: bytes, agent: str = "") -> bytes:
    """Answer one protocol request (raises protocol.ProtocolError on input we will not read)."""
    request = protocol.read_request(body)
    if request.query == "PROLOG":
        return protocol.prolog_reply()
    if request.query != "INVENTORY":
        raise protocol.ProtocolError(
            f"Unsupported query {request.query[:40]!r}: this server takes PROLOG and INVENTORY."
        )
    content = request.root.find("CONTENT")
    if content is None:
        raise protocol.ProtocolError("The inventory has no <CONTENT>.")
    ingest(token.site, request.device_id, content, agent=agent)
    return protocol.inventory_reply()


def ingest(site: str, device_id: str, content, *, agent: str = "") -> AgentDevice:
    """Reconcile one inventory ``<CONTENT>`` into the CMDB and remember the device."""
    item, details = mapping.to_item(device_id, content)
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    job, matched = discovery.run_inline(source_of(site), [item])
    device = db.session.scalar(select(AgentDevice).where(AgentDevice.device_id == device_id))
    if device is None:
        device = AgentDevice(device_id=device_id, site=site)
        db.session.add(device)
    login = mapping.logged_in_user(content)
    values = {
        "site": site,
        "ci_id": matched.get(0, device.ci_id),
        "agent": agent[:100],
        "details": details,
        "logged_in_user": login,
        "proposed_assignee_id": _user_for(login),
        "inventory_digest": _digest(item, details),
    }
    for name, value in values.items():
        if getattr(device, name) != value:
            setattr(device, name, value)
    device.last_inventory_at = utcnow()
    device.last_run = job  # not stored: what a caller (a test, the benchmark) may look at
    db.session.flush()
    return device


def _user_for(login: str) -> int | None:
    """The active Cairn user whose e-mail is ``login`` or starts with ``login@`` (one only)."""
    if not login:
        return None
    login = login.strip().lower().split("\\")[-1]
    ids = db.session.scalars(
        select(User.id)
        .where(
            User.active.is_(True),
            (func.lower(User.email) == login) | func.lower(User.email).like(f"{_like(login)}@%", escape="\\"),
        )
        .limit(2)
    ).all()
    return ids[0] if len(ids) == 1 else None


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _digest(item: dict, details: dict) -> str:
    return hashlib.sha256(json.dumps([item, details], sort_keys=True, default=str).encode()).hexdigest()


def devices(site: str | None = None) -> list[AgentDevice]:
    stmt = select(AgentDevice).order_by(AgentDevice.id)
    if site:
        stmt = stmt.where(AgentDevice.site == site)
    return list(db.session.scalars(stmt))
