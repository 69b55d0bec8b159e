"""The corpus (tests/integrations/email/corpus/*.eml, expected.json) through every source: HTTP,
the mailgate command, the LMTP and SMTP listener (smtplib against a listener started here) and the
IMAP poller (against a private Dovecot). Each message is sent, processed, and checked against its
expected outcome: new ticket, comment on which ticket, ignored with which reason, attachments, title,
text, CIs, watchers."""

from __future__ import annotations

import json
import re
import smtplib
from email import policy
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.integrations.email.conftest import free_port

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
NAMES = sorted(EXPECTED)
PLACEHOLDER = re.compile(rb"\{\{(ticket|ourid):(\d\d)\}\}")


def test_corpus_is_big_and_described():
    files = sorted(p.stem for p in CORPUS.glob("*.eml"))
    assert files == NAMES
    assert len(files) >= 40
    outcomes = {e.get("outcome") or e.get("status") or "duplicate" for e in EXPECTED.values()}
    assert {"new_ticket", "comment", "reopened", "related_ticket", "ignored", "duplicate"} <= outcomes


class Sources:
    """Feeds one raw message through a source; returns nothing (the test finds the stored row)."""

    def __init__(self, app, client, headers, imap_box=None):
        self.app, self.client, self.headers, self.imap_box = app, client, headers, imap_box
        self.controller = None

    def start(self, kind: str):
        if kind in ("lmtp", "smtp"):
            from integrations.email.lmtpd import make_controller

            self.port = free_port()
            self.controller = make_controller(self.app, "127.0.0.1", self.port, lmtp=kind == "lmtp")
            self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()

    def http(self, raw):
        response = self.client.post(
            "/api/v1/inbound-email", data=raw, headers={**self.headers, "Content-Type": "message/rfc822"}
        )
        assert response.status_code == 202, response.get_data(as_text=True)

    def mailgate(self, raw):
        result = self.app.test_cli_runner().invoke(args=["mailgate"], input=raw)
        assert result.exit_code == 0, result.output

    @staticmethod
    def recipients(raw: bytes) -> list[str]:
        """What an MTA would put in RCPT TO: our addresses among To and Cc."""
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
        found = [a.lower() for _, a in getaddresses(headers.get_all("To", []) + headers.get_all("Cc", []))]
        return [a for a in found if a.endswith("@cairn.test")] or ["helpdesk@cairn.test"]

    def lmtp(self, raw):
        with smtplib.LMTP("127.0.0.1", self.port) as client:
            refused = client.sendmail("sender@example.net", self.recipients(raw), raw)
        assert refused == {}

    def smtp(self, raw):
        with smtplib.SMTP("127.0.0.1", self.port) as client:
            refused = client.sendmail("sender@example.net", self.recipients(raw), raw)
        assert refused == {}

    def imap(self, raw):
        from integrations.email import imap

        self.imap_box.append(raw)
        result = imap.poll(self.imap_box.account())
        assert result.get("locked") is None and result["moved"] >= 1


def _setup(make, app):
    from cairn.auth.services import create_team
    from cairn.db import db

    agent = make.user("agent", email="agent@example.com", name="Agent Smith")
    create_team("Service Desk", member_ids=[agent.id])
    db.session.commit()
    cis = {
        "asset:AST-10042": make.ci("laptop", asset_tag="AST-10042").id,
        "host:web-prod-01": make.ci("server", attributes={"hostname": "web-prod-01"}).id,
        "serial:SN5CG1234XYZ": make.ci("laptop", vendor="HP", serial_number="SN5CG1234XYZ").id,
    }
    make.ci("server", attributes={"hostname": "web-prod-02"}, name="not-me")
    return cis


def _fill(raw: bytes, tickets: dict) -> bytes:
    from cairn.db import db
    from integrations.email.threading import new_message_id
    from tickets.models import Ticket

    def repl(match):
        kind, name = match.group(1).decode(), match.group(2).decode()
        ticket = db.session.get(Ticket, tickets[name])
        return (ticket.number if kind == "ticket" else new_message_id(ticket.id)).encode()

    return PLACEHOLDER.sub(repl, raw)


def _before(actions: dict, tickets: dict) -> None:
    from cairn.db import db
    from tickets import services

    for action, name in actions.items():
        ticket = services.get_ticket(tickets[name])
        services.transition(ticket, "resolved", {"note": "done", "resolution_code": "fixed"}, None, system=True)
        if action == "close":
            services.transition(ticket, "closed", {}, None, system=True)
        db.session.commit()


def check(name: str, expect: dict, row, tickets: dict, cis: dict) -> list[str]:
    """What differs from the expectation (empty when the message did as expected)."""
    from cairn.db import db
    from integrations.email.rules import undeliverable
    from tickets import services
    from tickets.models import Ticket, TicketComment, TicketLink

    problems = []

    def want(label, got, wanted):
        if got != wanted:
            problems.append(f"{name}: {label} is {got!r}, expected {wanted!r} (reason: {row.reason})")

    want("status", row.status, expect["status"])
    if "reason" in expect and expect["reason"].lower() not in (row.reason or "").lower():
        problems.append(f"{name}: reason {row.reason!r} lacks {expect['reason']!r}")
    if "outcome" in expect:
        want("outcome", row.outcome, expect["outcome"])
    if row.ticket_id is None:
        return problems
    ticket = db.session.get(Ticket, row.ticket_id)
    if row.outcome in ("new_ticket", "related_ticket"):
        tickets[name[:2]] = ticket.id
    if "ticket" in expect:
        want("ticket", ticket.id, tickets.get(expect["ticket"]))
    if "related" in expect:
        linked = db.session.scalar(
            select(TicketLink.target_id).where(TicketLink.source_id == ticket.id, TicketLink.type == "related")
        )
        want("related link", linked, tickets.get(expect["related"]))
    for key in ("kind", "title", "state"):
        if key in expect:
            want(key, getattr(ticket, key), expect[key])
    if "team" in expect:
        want("team", ticket.team.name if ticket.team else None, expect["team"])
    text = db.session.get(TicketComment, row.comment_id).body if row.comment_id else ticket.description
    for snippet in expect.get("text", []):
        if snippet not in text:
            problems.append(f"{name}: text lacks {snippet!r}: {text[:300]!r}")
    for snippet in expect.get("not_text", []):
        if snippet in text:
            problems.append(f"{name}: text should not hold {snippet!r}: {text[:300]!r}")
    if "attachments" in expect:
        names = sorted(a.filename for a in services.attachments_of(ticket))
        if row.outcome in ("new_ticket", "related_ticket"):
            want("attachments", names, sorted(expect["attachments"]))
        elif not set(expect["attachments"]) <= set(names):
            problems.append(f"{name}: attachments {names} lack {expect['attachments']}")
    if "cis" in expect:
        want("CIs", sorted(ticket.ci_ids), sorted(cis[c] for c in expect["cis"]))
    if "watchers" in expect:
        want("watchers", sorted(w.user.email for w in services.watchers_of(ticket)), sorted(expect["watchers"]))
    for address in expect.get("undeliverable", []):
        if not undeliverable(address):
            problems.append(f"{name}: {address} not marked undeliverable")
    return problems


@pytest.mark.parametrize("source", ["http", "mailgate", "lmtp", "smtp", "imap"])
def test_corpus_through_every_source(source, request, app, committed_db, committed_make, mail_config):
    from cairn.db import db
    from integrations.email.models import InboundEmail

    mail_config["CAIRN_MAIL_ATTACHMENT_MAX_BYTES"] = "200000"
    imap_box = request.getfixturevalue("imap_box") if source == "imap" else None
    cis = _setup(committed_make, app)
    headers = committed_make.headers("integration")
    sources = Sources(app, app.test_client(), headers, imap_box)
    feed = getattr(sources, source)
    sources.start(source)
    tickets: dict[str, int] = {}
    problems: list[str] = []
    by_name: dict[str, int] = {}
    try:
        for name in NAMES:
            expect = EXPECTED[name]
            raw = _fill((CORPUS / f"{name}.eml").read_bytes(), tickets)
            _before(expect.get("before", {}), tickets)
            db.session.remove()
            count = db.session.scalar(select(func.count()).select_from(InboundEmail))
            feed(raw)
            db.session.remove()
            if "duplicate_of" in expect:
                after = db.session.scalar(select(func.count()).select_from(InboundEmail))
                if after != count:
                    problems.append(f"{name}: a redelivered message was stored again")
                continue
            row = db.session.scalar(select(InboundEmail).order_by(InboundEmail.id.desc()).limit(1))
            if row is None or row.id in by_name.values():
                problems.append(f"{name}: nothing stored")
                continue
            by_name[name] = row.id
            problems += check(name, expect, row, tickets, cis)
    finally:
        sources.stop()
    assert not problems, "\n".join(problems)
    # Every row came from this source, and processing never left one queued.
    rows = db.session.execute(select(InboundEmail.source, InboundEmail.status)).all()
    assert {s for s, _ in rows} == {source}
    assert "queued" not in {s for _, s in rows}
