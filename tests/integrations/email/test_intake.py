"""The HTTP source and the store-then-process service: roles, dedup, caps, failures that stay alone,
reprocessing, the rate limit, and the sweeper when Redis was down."""

from __future__ import annotations

from sqlalchemy import func, select


def mail(
    n: int | str = 1, sender="alice@example.com", subject="Printer jammed", body="It is jammed.", extra=""
) -> bytes:
    msgid = f"Message-ID: <intake-{n}@example.com>\r\n" if n is not None else ""
    return (
        f"From: {sender}\r\nTo: incidents@cairn.test\r\nSubject: {subject}\r\n{msgid}{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def test_a_reused_message_id_with_other_content_is_a_new_message(post_mail, client, admin, db):
    """Some mailers reuse Message-IDs: a re-delivery is the same id AND the same content (sender,
    subject, date, body); a different message under a reused id is processed, and that is recorded."""
    from cairn.audit.models import ChangeLog
    from tickets.models import Ticket

    first = post_mail(mail(7, subject="VPN down", body="No VPN."))
    relayed = post_mail(mail(7, subject="VPN down", body="No VPN.", extra="Received: from relay-2\r\n"))
    other = post_mail(mail(7, subject="Monitor flickers", body="Since this morning."))
    other_again = post_mail(mail(7, subject="Monitor flickers", body="Since this morning."))
    assert relayed["id"] == first["id"], "a re-delivery is stored once"
    assert other["id"] != first["id"] and other["status"] == "processed"
    assert other_again["id"] == other["id"], "the second message's own re-delivery is one message too"
    titles = set(db.session.scalars(select(Ticket.title)))
    assert titles == {"VPN down", "Monitor flickers"}
    event = db.session.scalar(select(ChangeLog).where(ChangeLog.action == "message_id_reused"))
    assert event is not None and event.object_id == other["id"]
    assert event.changes["first_email_id"] == [None, first["id"]]


def test_roles_on_every_endpoint(client, make):
    raw = mail()
    for role in ("requester", "agent", "auditor", "change_manager"):
        response = client.post(
            "/api/v1/inbound-email", data=raw, headers={**make.headers(role), "Content-Type": "message/rfc822"}
        )
        assert response.status_code == 403, role
    assert client.post("/api/v1/inbound-email", data=raw, headers={"Content-Type": "message/rfc822"}).status_code == 401
    requester = make.headers("requester")
    for url in (
        "/api/v1/inbound-email",
        "/api/v1/inbound-email/1",
        "/api/v1/inbound-email/1/raw",
        "/api/v1/outbound-email",
    ):
        assert client.get(url, headers=requester).status_code == 403, url
    assert client.post("/api/v1/inbound-email/1/reprocess", headers=make.headers("agent")).status_code == 403


def test_same_message_id_twice_is_one_ticket(post_mail, client, admin, db):
    from tickets.models import Ticket

    first = post_mail(mail())
    again = post_mail(mail(extra="Received: from backup-mx\r\n"))
    assert again == first == {"id": first["id"], "status": "processed"}
    detail = client.get(f"/api/v1/inbound-email/{first['id']}", headers=admin).get_json()
    assert detail["outcome"] == "new_ticket" and detail["ticket_id"] and detail["reason"] is None
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    # Without a Message-ID, the header block's hash is the key.
    one = post_mail(mail(None, subject="No id"))
    two = post_mail(mail(None, subject="No id"))
    assert one["id"] == two["id"]
    raw = client.get(f"/api/v1/inbound-email/{first['id']}/raw", headers=admin)
    assert raw.status_code == 200 and raw.mimetype == "message/rfc822" and raw.data == mail()


def test_bad_requests_are_refused_cleanly(client, integration_headers, mail_config, post_mail):
    headers = {**integration_headers, "Content-Type": "message/rfc822"}
    assert client.post("/api/v1/inbound-email", data=b"", headers=headers).status_code in (415, 422)
    assert client.post("/api/v1/inbound-email", data=b"  \r\n", headers=headers).status_code == 422
    json_headers = {**integration_headers, "Content-Type": "application/json"}
    assert client.post("/api/v1/inbound-email", data=b"{}", headers=json_headers).status_code == 415
    bad_kind = client.post("/api/v1/inbound-email?kind=problem", data=mail(), headers=headers)
    assert bad_kind.status_code == 422
    mail_config["CAIRN_MAIL_MAX_BYTES"] = "500"
    big = client.post("/api/v1/inbound-email", data=mail(body="x" * 1000), headers=headers)
    assert big.status_code == 413
    mail_config["CAIRN_MAIL_MAX_BYTES"] = None
    assert client.get("/api/v1/inbound-email/999999", headers=integration_headers).status_code == 404
    assert client.get("/api/v1/inbound-email/99999999999", headers=integration_headers).status_code == 404
    # Garbage is stored and ignored with a reason, never a 500.
    junk = post_mail(b"\x00\xff\xfe garbage without headers \x00")
    assert junk["status"] == "ignored"


def test_ignored_mail_is_listed_with_its_reason(post_mail, client, make):
    post_mail(mail(1, sender="offers@evil.test"))
    post_mail(mail(2, extra="Auto-Submitted: auto-replied\r\n"))
    post_mail(mail(3))
    listed = client.get("/api/v1/inbound-email?status=ignored", headers=make.headers("auditor"))
    assert listed.status_code == 200
    reasons = sorted(item["reason"] for item in listed.get_json())
    assert len(reasons) == 2
    assert reasons[0].startswith("auto-submitted") and "evil.test is not allowed" in reasons[1]
    assert listed.headers["X-Pagination"]


def test_a_failing_message_is_marked_failed_and_blocks_nothing(post_mail, client, admin, mail_config, tmp_path, app):
    """A message whose processing raises is `failed` with the reason; the next one goes through;
    `reprocess` (API and CLI) retries it once the cause is gone."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    mail_config["CAIRN_ATTACHMENT_PATH"] = str(blocker)
    with_file = (
        b"From: alice@example.com\r\nTo: incidents@cairn.test\r\nSubject: With file\r\n"
        b"Message-ID: <f1@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
        b'See file.\r\n--b\r\nContent-Type: text/plain; name="a.txt"\r\n'
        b'Content-Disposition: attachment; filename="a.txt"\r\n\r\nhello\r\n--b--\r\n'
    )
    bad = post_mail(with_file)
    good = post_mail(mail(2))
    assert bad["status"] == "failed" and good["status"] == "processed"
    detail = client.get(f"/api/v1/inbound-email/{bad['id']}", headers=admin).get_json()
    assert detail["ticket_id"] is None and "Error" in detail["reason"]
    assert client.post(f"/api/v1/inbound-email/{good['id']}/reprocess", headers=admin).status_code == 409
    mail_config["CAIRN_ATTACHMENT_PATH"] = str(tmp_path / "files")
    result = app.test_cli_runner().invoke(args=["mail", "reprocess", "--failed"])
    assert result.exit_code == 0, result.output
    assert "reprocessed 1 message" in result.output
    detail = client.get(f"/api/v1/inbound-email/{bad['id']}", headers=admin).get_json()
    assert detail["status"] == "processed" and detail["attempts"] == 2 and detail["ticket_id"]
    assert app.test_cli_runner().invoke(args=["mail", "reprocess", str(bad["id"])]).exit_code == 1


def test_api_reprocess_after_allowing_a_domain(post_mail, client, admin, mail_config):
    ignored = post_mail(mail(1, sender="new@partner.test"))
    assert ignored["status"] == "ignored"
    mail_config["CAIRN_MAIL_ALLOWED_DOMAINS"] = "example.com,partner.test"
    again = client.post(f"/api/v1/inbound-email/{ignored['id']}/reprocess", headers=admin)
    # 202: queued in the answer; the job runs once the request has committed
    assert again.status_code == 202 and again.get_json()["status"] == "queued"
    done = client.get(f"/api/v1/inbound-email/{ignored['id']}", headers=admin).get_json()
    assert done["status"] == "processed" and done["ticket_id"] is not None


def test_rate_limit_per_sender(post_mail, client, admin, mail_config):
    mail_config["CAIRN_MAIL_RATE_LIMIT"] = "2"
    results = [post_mail(mail(i, subject=f"Problem {i}"))["status"] for i in range(4)]
    assert results == ["processed", "processed", "ignored", "ignored"]
    listed = client.get("/api/v1/inbound-email?status=ignored", headers=admin).get_json()
    assert {item["reason"] for item in listed} == {"rate limit: over 2 new tickets an hour"}
    other = post_mail(mail(9, sender="bob@example.com"))
    assert other["status"] == "processed"


def test_stored_when_redis_is_down_then_swept(committed_db, committed_make, app, redis_url):
    """With Redis unreachable the message is stored and stays queued; the sweeper queues it once
    Redis is back and a real RQ worker processes it."""
    from cairn.jobs import execute
    from cairn.jobs.worker import run_worker
    from integrations.email import intake
    from integrations.email.models import InboundEmail

    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    try:
        row, created = intake.accept(mail(1), source="cli")
        assert created
        stored = committed_db.session.get(InboundEmail, row.id)
        assert stored.status == "queued" and stored.enqueued_at is None
        app.config["REDIS_URL"] = redis_url
        assert execute("integrations.email.tasks.sweep_inbound") == 1
        committed_db.session.remove()
        assert committed_db.session.get(InboundEmail, row.id).enqueued_at is not None
        run_worker(["cairn", "emails"], burst=True)
    finally:
        app.config["REDIS_URL"] = None
    committed_db.session.remove()
    done = committed_db.session.get(InboundEmail, row.id)
    assert done.status == "processed" and done.ticket_id is not None
    assert execute("integrations.email.tasks.sweep_inbound") == 0


def _with_files(n: int, sizes: list[int]) -> bytes:
    parts = [
        f"From: alice@example.com\r\nTo: incidents@cairn.test\r\nSubject: Files {n}\r\n"
        f'Message-ID: <files-{n}@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"'
        "\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nFiles.\r\n"
    ]
    for i, size in enumerate(sizes):
        parts.append(
            f'--b\r\nContent-Type: text/plain; name="f{i}.txt"\r\nContent-Disposition: attachment; '
            f'filename="f{i}.txt"\r\n\r\n{"x" * size}\r\n'
        )
    return ("".join(parts) + "--b--\r\n").encode()


def test_per_mail_attachment_budget(post_mail, client, admin, mail_config, db):
    from tickets import services

    mail_config["CAIRN_MAIL_ATTACHMENTS_MAX_BYTES"] = "1500"
    result = post_mail(_with_files(1, [1000, 1000]))
    detail = client.get(f"/api/v1/inbound-email/{result['id']}", headers=admin).get_json()
    ticket = services.get_ticket(detail["ticket_id"])
    assert [a.filename for a in services.attachments_of(ticket)] == ["f0.txt"]
    assert "Attachments not stored (over the size limit): f1.txt" in ticket.description


def test_mail_cap_not_the_request_cap_applies(post_mail, app, mail_config):
    """The HTTP source takes messages up to CAIRN_MAIL_MAX_BYTES, past the API's request limit."""
    saved = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        assert post_mail(_with_files(2, [3000]))["status"] == "processed"
    finally:
        app.config["MAX_CONTENT_LENGTH"] = saved
