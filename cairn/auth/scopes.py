"""Token scopes (API.md): a token may be limited to some of ``SCOPES``; a call outside them is 403.

Every API operation needs one scope: a read (GET, HEAD) needs ``read``; a write needs the scope of
the part of the API that serves it (``WRITE_SCOPES``, by blueprint), unless the view declares its
own with :func:`scope` (a question sent as POST, such as a what-if impact, is a read). A token
without scopes may do whatever its user's role allows, as before; scopes only ever narrow a token.
"""

from __future__ import annotations

READ = "read"
CMDB_WRITE = "cmdb:write"
TICKETS_WRITE = "tickets:write"
SYNC = "sync"
MAIL_INBOUND = "mail:inbound"
# Monitoring systems posting events (POST /events, /events/alertmanager): nothing else.
EVENTS_WRITE = "events:write"
# Knowledge articles: write, submit for review, publish, retire (tickets/knowledge).
KB_WRITE = "kb:write"
ADMIN = "admin"
SCOPES = (READ, CMDB_WRITE, TICKETS_WRITE, SYNC, MAIL_INBOUND, EVENTS_WRITE, KB_WRITE, ADMIN)
SCOPE_ATTR = "_cairn_scope"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# The scope a write needs, by the blueprint that serves it.
WRITE_SCOPES = {
    "cmdb": CMDB_WRITE,
    "assets": CMDB_WRITE,
    "relations": CMDB_WRITE,
    "tickets": TICKETS_WRITE,
    "knowledge": KB_WRITE,  # a resolution attached to a ticket declares tickets:write
    "slas": ADMIN,  # calendars, SLA policies, escalation rules: the desk's configuration
    "routing": ADMIN,  # routing rules, team assignment (the dry run declares read)
    "catalogue": TICKETS_WRITE,  # ordering, approving, fulfilling; item definitions declare admin
    "sync": SYNC,
    "agents": SYNC,
    "webhooks": SYNC,
    "email": ADMIN,
    "events": EVENTS_WRITE,  # binding rules declare admin
    "auth": ADMIN,
    "directory": ADMIN,
    "changelog": ADMIN,
    "views": READ,  # a saved view is the caller's own setting, not data of the estate
    "reports": READ,
    "search": READ,
}


def scope(name: str):
    """Declare the scope a view method needs when its blueprint's default does not fit."""
    if name not in SCOPES:
        raise ValueError(f"unknown scope {name!r}")

    def decorate(func):
        setattr(func, SCOPE_ATTR, name)
        return func

    return decorate


def needed(blueprint: str | None, method: str, handler) -> str | None:
    """The scope a call needs: the view's own declaration, else ``read`` for a read, else the
    blueprint's write scope (None: a blueprint without one, which a scoped token may not write)."""
    declared = getattr(handler, SCOPE_ATTR, None)
    if declared is not None:
        return declared
    if method in READ_METHODS:
        return READ
    return WRITE_SCOPES.get(blueprint or "")


def allowed_networks_ok(networks: list[str] | None, address: str | None) -> bool:
    """Whether ``address`` is inside one of ``networks`` (CIDR); no list: any address."""
    if not networks:
        return True
    import ipaddress

    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)
