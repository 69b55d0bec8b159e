"""Notifications out, to a real SMTP server (aiosmtpd) started by the test: who gets what, the
loop-proof and threading headers, replies to a notification threading back, and the cases where
nothing may be sent (own comments, auto-replies, bounced addresses, our own mail coming back)."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from cairn.db import utcnow


def raw_mail(msgid: str, subject: str, body: str, sender="alice@example.com", extra="") -> bytes:
    return (
        f"From: Alice Arnold <{sender}>\r\nTo: incidents@cairn.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{msgid}>\r\n{extra}MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def text(message) -> str:
    return message.get_body(("plain",)).get_content()


def dispatch() -> int:
    """Run the dispatcher until it has read every ticket event written so far. On PostgreSQL the
    change feed shows a transaction only once every older one has ended, cluster-wide, so a busy
    server (other databases included) can delay what one call sees; the test waits for it."""
    from cairn.audit.models import ChangeLog
    from cairn.audit.services import Cursor
    from cairn.db import db
    from cairn.jobs import execute
    from cairn.jobs.models import OutboxCursor

    # The test client's requests share the test's app context and session: end its transaction so
    # the job (its own session) can write on SQLite.
    db.session.remove()
    last = db.session.execute(
        select(ChangeLog.txid, ChangeLog.id)
        .where(ChangeLog.object_type == "ticket")
        .order_by(ChangeLog.txid.desc(), ChangeLog.id.desc())
        .limit(1)
    ).first()
    db.session.remove()
    total, deadline = 0, time.monotonic() + 30
    while True:
        total += execute("integrations.email.tasks.dispatch_notifications")
        cursor = db.session.get(OutboxCursor, "notifications")
        position = Cursor(cursor.txid, cursor.change_id) if cursor else Cursor(0, 0)
        db.session.remove()
        if last is None or (position.txid, position.id) >= tuple(last) or time.monotonic() > deadline:
            return total
        time.sleep(0.1)


def test_notifications_end_to_end(app, committed_db, committed_make, smtp_sink):
    from integrations.email.models import InboundEmail, OutboundEmail
    from tickets.models import Ticket

    client = app.test_client()
    gate = committed_make.headers("integration")
    admin = committed_make.headers("admin")
    agent = committed_make.user("agent", email="agent@example.com")
    agent_id = agent.id  # read now: the dispatcher's steps expire what the session holds
    agent_headers = committed_make.headers(user=agent)

    def post(raw):
        response = client.post("/api/v1/inbound-email", data=raw, headers={**gate, "Content-Type": "message/rfc822"})
        assert response.status_code == 202
        return response.get_json()

    # 1. A new ticket by mail: the requester is told, with the tag, loop-proof and threading headers.
    created = post(raw_mail("first@example.com", "Laptop fan noisy", "It sounds like a jet."))
    assert created["status"] == "processed"
    dispatch()
    first = smtp_sink.wait_for(1)[0]
    ticket = committed_db.session.scalar(select(Ticket))
    assert first["To"] == "alice@example.com" and first["From"] == "helpdesk@cairn.test"
    assert first["Subject"] == f"[{ticket.number}] Laptop fan noisy"
    assert first["Auto-Submitted"] == "auto-generated" and first["X-Loop"] == "helpdesk@cairn.test"
    assert first["Precedence"] == "bulk" and first["X-Auto-Response-Suppress"] == "All"
    assert first["In-Reply-To"] == "<first@example.com>" and "<first@example.com>" in first["References"]
    assert first["Message-ID"].startswith(f"<cairn.{ticket.id}.")
    assert first.get_body(("plain",)).get_content().startswith("##- Please type your reply above this line -##")
    assert "jet" in first.get_body(("html",)).get_content()
    assert smtp_sink.envelopes[0].mail_from == "helpdesk@cairn.test"

    # 2. The requester replies to the notification (its Message-ID only): a comment, no mail to herself.
    reply = post(
        raw_mail(
            "reply@example.com",
            "Re: something else",
            "Still noisy.\n\n> quoted",
            extra=f"In-Reply-To: {first['Message-ID']}\r\n",
        )
    )
    row = committed_db.session.get(InboundEmail, reply["id"])
    assert row.outcome == "comment" and row.ticket_id == ticket.id
    dispatch()
    assert len(smtp_sink.messages) == 1

    # 3. An agent's public comment reaches the requester; an internal note does not.
    url = f"/api/v1/tickets/{ticket.id}"
    assert (
        client.post(
            f"{url}/comments", json={"body": "Cleaned the fan.", "internal": False}, headers=agent_headers
        ).status_code
        == 201
    )
    assert (
        client.post(
            f"{url}/comments", json={"body": "Secret note.", "internal": True}, headers=agent_headers
        ).status_code
        == 201
    )
    dispatch()
    second = smtp_sink.wait_for(2)[1]
    assert second["To"] == "alice@example.com" and "Cleaned the fan." in second.get_body(("plain",)).get_content()
    assert first["Message-ID"] in second["References"]

    # 4. Assignment reaches the assignee; resolution reaches the requester.
    assert client.patch(url, json={"assignee_id": agent_id}, headers=admin).status_code == 200
    dispatch()
    assigned = smtp_sink.wait_for(3)[2]
    assert assigned["To"] == "agent@example.com" and "assigned to agent@example.com" in text(assigned)
    resolved = client.post(
        f"{url}/transitions",
        json={"to": "resolved", "note": "New fan.", "resolution_code": "fixed"},
        headers=agent_headers,
    )
    assert resolved.status_code == 200
    dispatch()
    done = smtp_sink.wait_for(4)[3]
    assert done["To"] == "alice@example.com" and "resolved" in text(done) and "New fan." in text(done)
    assert dispatch() == 0  # nothing twice

    # 5. Her out-of-office reply to that: ignored, so no ticket change and no notification.
    ooo = post(
        raw_mail(
            "ooo@example.com",
            f"Automatic reply: {done['Subject']}",
            "Away.",
            extra=f"Auto-Submitted: auto-replied\r\nIn-Reply-To: {done['Message-ID']}\r\n",
        )
    )
    assert ooo["status"] == "ignored"
    committed_db.session.remove()
    assert committed_db.session.get(Ticket, ticket.id).state == "resolved"
    # 6. Our own notification coming back (a forwarding rule): ignored as ours.
    echoed = post(smtp_sink.envelopes[3].original_content)
    assert echoed["status"] == "ignored"
    assert "our own" in committed_db.session.get(InboundEmail, echoed["id"]).reason
    dispatch()
    assert len(smtp_sink.messages) == 4

    # 7. A bounce of a notification marks the address; later notifications to it are suppressed.
    dsn = (
        "From: MAILER-DAEMON@mx.example.com\r\nTo: helpdesk@cairn.test\r\nSubject: Undelivered Mail\r\n"
        "Message-ID: <dsn-1@mx.example.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="d"\r\n\r\n'
        "--d\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n"
        "--d\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; alice@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        f"--d\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {done['Message-ID']}\r\n\r\n--d--\r\n"
    ).encode()
    assert post(dsn)["status"] == "ignored"
    reopen = client.post(f"{url}/transitions", json={"to": "in_progress"}, headers=agent_headers)
    assert reopen.status_code == 200
    assert client.post(f"{url}/comments", json={"body": "Any better?"}, headers=agent_headers).status_code == 201
    dispatch()
    assert len(smtp_sink.messages) == 4
    listed = client.get(f"/api/v1/outbound-email?ticket_id={ticket.id}", headers=admin).get_json()
    assert [(o["event"], o["status"]) for o in listed][:1] == [("commented", "suppressed")]
    assert "bounced" in listed[0]["reason"]
    assert sorted({o["status"] for o in listed}) == ["sent", "suppressed"]
    sent = committed_db.session.scalars(select(OutboundEmail).where(OutboundEmail.status == "sent")).all()
    assert len(sent) == 4 and all(o.sent_at for o in sent)


def test_smtp_down_keeps_notifications_queued_then_retries(app, committed_db, committed_make, smtp_sink):
    from integrations.email import notify
    from integrations.email.models import OutboundEmail

    app.config["CAIRN_MAIL_SMTP_PORT"] = "1"  # nothing listens there
    client = app.test_client()
    gate = committed_make.headers("integration")
    response = client.post(
        "/api/v1/inbound-email",
        data=raw_mail("down@example.com", "Monitor dead", "Black."),
        headers={**gate, "Content-Type": "message/rfc822"},
    )
    assert response.status_code == 202
    dispatch()
    row = committed_db.session.scalar(select(OutboundEmail))
    assert row.status == "queued" and row.attempts == 1 and "Error" in row.reason
    waited = (row.next_attempt_at - utcnow()).total_seconds()
    assert 60 * 0.7 <= waited <= 60 * 1.2, "the next try follows the retry schedule"
    assert notify.queue_due() == 0, "not due yet"
    app.config["CAIRN_MAIL_SMTP_PORT"] = str(smtp_sink.port)
    committed_db.session.execute(update(OutboundEmail).values(next_attempt_at=utcnow()))
    committed_db.session.commit()
    assert notify.queue_due() == 1  # inline: sent right away
    committed_db.session.commit()
    assert smtp_sink.wait_for(1)[0]["Subject"].endswith("Monitor dead")
    committed_db.session.expire_all()
    assert committed_db.session.get(OutboundEmail, row.id).status == "sent"
    assert notify.queue_due() == 0


def test_an_event_notifies_who_it_names_then_not_who_the_ticket_names_now(app, committed_db, committed_make):
    """A ticket opened without a team and then given one: the team hears of it once (the update),
    not also from the creation, which read the ticket as it is now instead of what it recorded."""
    from integrations.email.models import OutboundEmail
    from tickets.models import Ticket

    client = app.test_client()
    admin = committed_make.headers("admin")
    member = committed_make.user("agent", email="member@example.com")
    team = committed_make.team(members=[member])
    requester = committed_make.user("requester", email="req@example.com")
    other = committed_make.user("requester", email="other@example.com")
    created = client.post(
        "/api/v1/tickets", json={"kind": "incident", "title": "Printer on fire", "requester_id": requester.id},
        headers=admin,
    )  # fmt: skip
    assert created.status_code == 201, created.get_json()
    url = f"/api/v1/tickets/{created.get_json()['id']}"
    assert client.patch(url, json={"team_id": team.id}, headers=admin).status_code == 200
    assert client.patch(url, json={"requester_id": other.id}, headers=admin).status_code == 200
    dispatch()
    committed_db.session.remove()
    rows = committed_db.session.scalars(select(OutboundEmail).order_by(OutboundEmail.id)).all()
    sent = [(o.event, o.recipient) for o in rows]
    assert sent.count(("assigned", "member@example.com")) == 1, sent
    # the creation confirmation went to who requested it then
    assert ("created", "req@example.com") in sent and ("created", "other@example.com") not in sent, sent
    assert committed_db.session.scalar(select(Ticket)).requester_id == other.id
