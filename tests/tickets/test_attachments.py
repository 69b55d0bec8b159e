"""Attachments: multipart upload, size cap, type from the bytes, storage, permissions, history."""

import io
import zlib
from pathlib import Path

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    + b"\x00\x00\x00\rIDATx\x9c"
    + zlib.compress(b"\x00\x00\x00\x00\x00")[2:]
    + b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def upload(client, ticket, headers, data, filename="f.bin", content_type="application/octet-stream"):
    return client.post(
        f"/api/v1/tickets/{ticket['id']}/attachments",
        data={"file": (io.BytesIO(data), filename, content_type)},
        headers=headers,
        content_type="multipart/form-data",
    )


def test_upload_sniffs_type_and_downloads_the_same_bytes(app, client, desk, agent):
    t = desk.open()
    r = upload(client, t, agent.headers, PNG, "screen.png", "image/png")
    assert r.status_code == 201, r.json
    assert r.json["content_type"] == "image/png" and r.json["size"] == len(PNG) and r.json["filename"] == "screen.png"
    stored = list(Path(app.instance_path, "attachments").rglob("*"))
    assert any(p.is_file() and p.read_bytes() == PNG for p in stored)
    got = client.get(f"/api/v1/tickets/{t['id']}/attachments/{r.json['id']}", headers=agent.headers)
    assert got.status_code == 200 and got.data == PNG
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in got.headers["Content-Disposition"]
    listed = client.get(f"/api/v1/tickets/{t['id']}/attachments", headers=agent.headers).json
    assert [a["id"] for a in listed] == [r.json["id"]]


def test_forged_and_unknown_types_are_octet_stream(client, desk, agent):
    t = desk.open()
    html = b"<html><script>alert(1)</script></html>"
    forged = upload(client, t, agent.headers, html, "cat.png", "image/png")
    assert forged.status_code == 201 and forged.json["content_type"] == "application/octet-stream"
    text = upload(client, t, agent.headers, b"line one\nline two\n", "log.txt", "text/plain")
    assert text.json["content_type"] == "text/plain"
    pdf_claimed_text = upload(client, t, agent.headers, b"%PDF-1.7\n...", "doc.txt", "text/plain")
    assert pdf_claimed_text.json["content_type"] == "application/octet-stream"
    pdf = upload(client, t, agent.headers, b"%PDF-1.7\n...", "doc.pdf", "application/pdf")
    assert pdf.json["content_type"] == "application/pdf"
    binary = upload(client, t, agent.headers, bytes(range(256)) * 4, "blob", "application/x-thing")
    assert binary.json["content_type"] == "application/octet-stream"
    got = client.get(f"/api/v1/tickets/{t['id']}/attachments/{forged.json['id']}", headers=agent.headers)
    assert got.headers["Content-Type"] == "application/octet-stream"


def test_size_cap_empty_and_wrong_body(app, client, desk, agent):
    t = desk.open()
    app.config["CAIRN_ATTACHMENT_MAX_BYTES"] = 1000
    try:
        assert upload(client, t, agent.headers, b"a" * 1000).status_code == 201
        too_big = upload(client, t, agent.headers, b"a" * 1001)
        assert too_big.status_code == 413
    finally:
        app.config.pop("CAIRN_ATTACHMENT_MAX_BYTES")
    assert upload(client, t, agent.headers, b"").status_code == 422
    no_file = client.post(f"/api/v1/tickets/{t['id']}/attachments", data={}, headers=agent.headers,
                          content_type="multipart/form-data")  # fmt: skip
    assert no_file.status_code == 422
    as_json = client.post(f"/api/v1/tickets/{t['id']}/attachments", json={"file": "x"}, headers=agent.headers)
    assert as_json.status_code == 415
    assert len(client.get(f"/api/v1/tickets/{t['id']}/attachments", headers=agent.headers).json) == 1


def test_download_has_the_ticket_permissions(client, desk, agent, requester, actor):
    own = desk.open(headers=requester.headers)
    theirs = desk.open()
    a = upload(client, own, requester.headers, b"my log\n", "log.txt", "text/plain").json
    b = upload(client, theirs, agent.headers, b"secret\n", "s.txt", "text/plain").json
    assert (
        client.get(f"/api/v1/tickets/{own['id']}/attachments/{a['id']}", headers=requester.headers).status_code == 200
    )
    assert (
        client.get(f"/api/v1/tickets/{theirs['id']}/attachments/{b['id']}", headers=requester.headers).status_code
        == 404
    )
    assert upload(client, theirs, requester.headers, b"x\n").status_code == 404
    # an attachment is only reachable through its own ticket
    assert (
        client.get(f"/api/v1/tickets/{own['id']}/attachments/{b['id']}", headers=requester.headers).status_code == 404
    )
    assert client.get(f"/api/v1/tickets/{own['id']}/attachments/{b['id']}", headers=agent.headers).status_code == 404


def test_attachment_is_in_the_ticket_history_and_filename_is_cleaned(client, desk, agent):
    t = desk.open()
    r = upload(client, t, agent.headers, b"hello\n", "../../etc/passwd", "text/plain")
    assert r.json["filename"] == "passwd"
    history = client.get(f"/api/v1/tickets/{t['id']}/history", headers=agent.headers).json
    assert history[0]["object_type"] == "ticket_attachment" and "passwd" in history[0]["summary"]


def test_closed_ticket_takes_no_attachment(client, desk, agent):
    t = desk.open()
    desk.move(t, "canceled", note="mistake")
    assert upload(client, t, agent.headers, b"late\n").status_code == 409
