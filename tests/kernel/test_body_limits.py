"""The request size cap holds whatever the framing: a chunked body (no Content-Length) past the cap
is refused with 413, never cut to the cap and used. Sent through real servers (Werkzeug's, in a
thread, and gunicorn, in a process), since the test client does not frame bodies as a network
client does."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

MB = 1024 * 1024
DEFAULT_CAP = 10 * MB
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pieces(body: bytes, size: int = 256 * 1024):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def send_chunked(port: int, path: str, body: bytes, headers: dict) -> tuple[int, str, bytes]:
    """POST ``body`` with Transfer-Encoding: chunked; returns status, content type and body. The
    server may answer (and close) before the whole body is sent: the answer is what counts."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest("POST", path, skip_accept_encoding=True)
        for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
            conn.putheader(name, value)
        conn.endheaders()
        try:
            for piece in _pieces(body):
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


@pytest.fixture
def werkzeug_server(app, committed_db):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture
def gunicorn_server(app, committed_db, database_url, instance_dir, tmp_path):
    """gunicorn (one sync worker) serving an app of its own on the test database, default cap."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CAIRN_INSTANCE_PATH": str(instance_dir),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "CAIRN_TOKEN_REMEMBER_SECONDS": "0",
        "CAIRN_LOG_LEVEL": "WARNING",
    }
    for name in ("REDIS_URL", "CAIRN_MAX_REQUEST_BYTES"):
        env.pop(name, None)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [str(gunicorn), "-w", "1", "-b", f"127.0.0.1:{port}", "--timeout", "60", "cairn.app:create_app()"],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                conn.close()
            assert time.monotonic() < deadline, "gunicorn did not start: " + log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _is_problem(status, content_type, body, expected):
    assert status == expected, body[:500]
    assert content_type.startswith("application/problem+json")
    assert json.loads(body)["status"] == expected


def _ci_count(db, prefix: str) -> int:
    from cmdb.models import ConfigurationItem

    db.session.rollback()
    count = db.session.scalar(select(func.count()).where(ConfigurationItem.name.like(f"{prefix}%")))
    db.session.rollback()
    return count


def _padded_json(name: str, size: int) -> bytes:
    """A valid JSON body of ``size`` bytes whose first ``DEFAULT_CAP`` bytes are valid JSON too
    (trailing whitespace): cut at the cap it would still create the CI."""
    head = json.dumps({"name": name, "ci_class": "server"}).encode()
    return head + b" " * (size - len(head))


def _padded_csv(prefix: str, size: int) -> bytes:
    """A CSV of ``size`` bytes: three CIs, blank lines, three more CIs at the end. Cut at the cap it is
    still a valid file with the first three."""
    head = "".join(f"{prefix}-{n},server\r\n" for n in range(3))
    tail = "".join(f"{prefix}-{n},server\r\n" for n in range(3, 6))
    text = "name,ci_class\r\n" + head
    return (text + "\r\n" * ((size - len(text) - len(tail)) // 2) + tail).encode()


@pytest.mark.parametrize("server", ["werkzeug_server", "gunicorn_server"])
def test_chunked_bodies_past_the_cap_are_413_and_change_nothing(request, server, committed_db, committed_make):
    from integrations.sync.models import SyncJob

    port = request.getfixturevalue(server)
    admin = committed_make.headers("admin")
    jobs_before = committed_db.session.scalar(select(func.count()).select_from(SyncJob))
    committed_db.session.rollback()  # no transaction left open while the server writes

    # Under the cap, chunked framing works: the body is read whole.
    status, _, body = send_chunked(
        port, "/api/v1/cis", _padded_json("chunked-small", 2 * MB), {**admin, "Content-Type": "application/json"}
    )
    assert status == 201, body[:500]

    # 11 MB of JSON whose first 10 MB parse: refused, not cut.
    json_headers = {**admin, "Content-Type": "application/json"}
    _is_problem(*send_chunked(port, "/api/v1/cis", _padded_json("chunked-big", 11 * MB), json_headers), 413)
    assert _ci_count(committed_db, "chunked-big") == 0

    # 11 MB of CSV whose first 10 MB are a valid file: refused, no job, no CI.
    csv_headers = {**admin, "Content-Type": "text/csv"}
    _is_problem(*send_chunked(port, "/api/v1/imports/cis", _padded_csv("chunked-csv", 11 * MB), csv_headers), 413)
    assert _ci_count(committed_db, "chunked-csv") == 0
    assert committed_db.session.scalar(select(func.count()).select_from(SyncJob)) == jobs_before
    committed_db.session.rollback()

    # Exactly at the cap is still accepted.
    status, _, body = send_chunked(port, "/api/v1/cis", _padded_json("chunked-exact", DEFAULT_CAP), json_headers)
    assert status == 201, body[:500]
    assert _ci_count(committed_db, "chunked-") == 2


def _mail(size: int, n: int) -> bytes:
    head = (
        f"From: alice@example.com\r\nTo: helpdesk@cairn.test\r\nSubject: big {n}\r\n"
        f"Message-ID: <chunked-{n}@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * ((size - len(head)) // len(line))


def test_inbound_mail_has_its_own_cap_whatever_the_framing(app, werkzeug_server, committed_db, committed_make):
    """The mail endpoint reads up to CAIRN_MAIL_MAX_BYTES (more than the general cap), and no more:
    a chunked message past it is 413 and stores nothing."""
    from integrations.email.models import InboundEmail

    headers = {**committed_make.headers("integration"), "Content-Type": "message/rfc822"}
    saved = {key: app.config.get(key) for key in ("MAX_CONTENT_LENGTH", "CAIRN_MAIL_MAX_BYTES")}
    app.config.update(MAX_CONTENT_LENGTH=100_000, CAIRN_MAIL_MAX_BYTES=300_000)
    try:
        status, _, body = send_chunked(werkzeug_server, "/api/v1/inbound-email", _mail(200_000, 1), headers)
        assert status == 202, body[:500]
        too_big = send_chunked(werkzeug_server, "/api/v1/inbound-email", _mail(400_000, 2), headers)
    finally:
        app.config.update(saved)
    _is_problem(*too_big, 413)
    committed_db.session.rollback()
    stored = committed_db.session.scalars(select(InboundEmail.size)).all()
    assert stored == [len(_mail(200_000, 1))]
