"""A real local HTTP receiver that checks webhook signatures, and app settings for sync tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    """Records every POST; ``status`` is what it answers; ``secret`` checks X-Cairn-Signature."""

    def __init__(self):
        self.requests: list[dict] = []
        self.status = 200
        self.secret: str | None = None
        self.lock = threading.Lock()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                valid = None
                if receiver.secret is not None:
                    expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                    valid = hmac.compare_digest(expected, headers.get("x-cairn-signature", ""))
                with receiver.lock:
                    receiver.requests.append(
                        {"headers": headers, "body": body, "json": json.loads(body), "signature_ok": valid}
                    )
                    receiver.arrived.set()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def allow_private(app):
    """Tests deliver to 127.0.0.1, which production refuses (SSRF protection)."""
    previous = app.config.get("CAIRN_WEBHOOK_ALLOW_PRIVATE")
    app.config["CAIRN_WEBHOOK_ALLOW_PRIVATE"] = "1"
    yield
    app.config["CAIRN_WEBHOOK_ALLOW_PRIVATE"] = previous


@pytest.fixture
def config(app):
    """Set app settings for one test: ``config(CAIRN_X="...")``; restored afterwards."""
    saved = {}

    def set_(**values):
        for key, value in values.items():
            saved.setdefault(key, app.config.get(key))
            app.config[key] = value

    yield set_
    for key, value in saved.items():
        app.config[key] = value
