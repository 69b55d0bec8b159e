"""The CAIRN_MAIL_* settings, read from the app config when used (never at import time)."""

from __future__ import annotations

from flask import current_app

DEFAULTS: dict[str, object] = {
    # Cairn's own address: From of notifications; mail from it is a loop.
    "CAIRN_MAIL_ADDRESS": "cairn@localhost",
    # recipient=kind[:team name], comma separated: incidents@x=incident,requests@x=request:Service Desk
    "CAIRN_MAIL_ROUTES": "",
    "CAIRN_MAIL_DEFAULT_KIND": "incident",
    # Domains whose unknown senders become requesters; "*" for all, "" for none.
    "CAIRN_MAIL_ALLOWED_DOMAINS": "*",
    # New tickets per sender per hour; past it, mail is stored and ignored ("rate limit").
    "CAIRN_MAIL_RATE_LIMIT": 20,
    "CAIRN_MAIL_MAX_BYTES": 30 * 1024 * 1024,
    "CAIRN_MAIL_ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
    "CAIRN_MAIL_ATTACHMENTS_MAX_BYTES": 25 * 1024 * 1024,
    "CAIRN_MAIL_HTML_MAX_BYTES": 1024 * 1024,
    "CAIRN_MAIL_HTML_SECONDS": 2.0,
    # Stored mail not processed after this long is queued again by the sweeper.
    "CAIRN_MAIL_REQUEUE_SECONDS": 300,
    "CAIRN_MAIL_SMTP_HOST": "",
    "CAIRN_MAIL_SMTP_PORT": 25,
    "CAIRN_MAIL_SMTP_USER": "",
    "CAIRN_MAIL_SMTP_PASSWORD": "",
    "CAIRN_MAIL_SMTP_TLS": "",  # "starttls" or "ssl"
    "CAIRN_MAIL_SMTP_TIMEOUT": 30,
    "CAIRN_MAIL_QUEUE": "emails",
    # Notifications per recipient per ticket per 10 minutes (past it they are suppressed).
    "CAIRN_MAIL_NOTIFY_LIMIT": 10,
    "CAIRN_MAIL_IMAP_HOST": "",
    "CAIRN_MAIL_IMAP_PORT": 993,
    "CAIRN_MAIL_IMAP_SSL": "true",
    "CAIRN_MAIL_IMAP_USER": "",
    "CAIRN_MAIL_IMAP_PASSWORD": "",
    "CAIRN_MAIL_IMAP_FOLDER": "INBOX",
    "CAIRN_MAIL_IMAP_PROCESSED_FOLDER": "Processed",
    "CAIRN_MAIL_IMAP_BATCH": 200,
    "CAIRN_MAIL_IMAP_TIMEOUT": 60,
}


def get(name: str):
    value = current_app.config.get(name)
    return DEFAULTS.get(name) if value is None else value


def get_int(name: str) -> int:
    value = get(name)
    return int(DEFAULTS[name] if value == "" else value)


def get_float(name: str) -> float:
    value = get(name)
    return float(DEFAULTS[name] if value == "" else value)


def get_bool(name: str) -> bool:
    value = get(name)
    return value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes", "on"}


def own_address() -> str:
    return str(get("CAIRN_MAIL_ADDRESS")).strip().lower()


def own_domain() -> str:
    return own_address().rpartition("@")[2] or "localhost"


def routes() -> dict[str, tuple[str, str | None]]:
    """{recipient address: (kind, team name or None)} from CAIRN_MAIL_ROUTES."""
    out: dict[str, tuple[str, str | None]] = {}
    for item in str(get("CAIRN_MAIL_ROUTES") or "").split(","):
        address, _, target = item.partition("=")
        if not address.strip() or not target.strip():
            continue
        kind, _, team = target.partition(":")
        out[address.strip().lower()] = (kind.strip(), team.strip() or None)
    return out


def allowed_domains() -> set[str]:
    return {d.strip().lower() for d in str(get("CAIRN_MAIL_ALLOWED_DOMAINS") or "").split(",") if d.strip()}
