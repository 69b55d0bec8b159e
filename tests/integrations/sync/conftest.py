"""A real local HTTP receiver (tests/peers.py) that checks webhook signatures, and app settings for sync tests."""

from __future__ import annotations

import pytest

from tests.peers import Receiver


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
