"""Webhook targets are vetted when a subscription is saved (created or changed), not only at
delivery: addresses in every notation a resolver reads, names that only resolve inside the network,
names that resolve to private addresses. Neither the caller nor the delivery log learns what a name
resolved to. Only 127.0.0.0/8 is ever connected to; other addresses are only resolved (faked)."""

import socket

import pytest
from sqlalchemy import select

from integrations.webhooks import services, transport
from integrations.webhooks.models import WebhookDelivery

HOOKS = "/api/v1/webhooks"
FAKE_NAME = "hooks.example.test"
PUBLIC = "93.184.215.14"  # resolved to, never connected to

INSIDE = [
    "http://0x7f000001/",
    "http://2130706433/",
    "http://127.1/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://localhost./",
    "http://LOCALHOST/",
    "http://printer.local/",
    "http://intranet/",
    "http://intranet./",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::a00:1]/",
    "http://[fe80::1]/",
    "http://0.0.0.0/",
    "http://100.64.0.1/",
    "http://192.168.1.1:8080/",
]


@pytest.fixture
def resolves_to(monkeypatch):
    """``resolves_to("127.0.0.1")``: FAKE_NAME resolves to that address from now on."""
    real = socket.getaddrinfo
    answer = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host == FAKE_NAME:
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answer["address"], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(transport.socket, "getaddrinfo", getaddrinfo)

    def set_(address):
        answer["address"] = address

    return set_


def _refused(response):
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json" and "url" in response.json["errors"]
    return " ".join(response.json["errors"]["url"])


@pytest.mark.parametrize("url", INSIDE)
def test_addresses_inside_the_network_are_refused_when_subscribing(client, make, url):
    message = _refused(client.post(HOOKS, headers=make.headers("integration"), json={"url": url, "events": ["*"]}))
    assert "may not target" in message or "not a valid" in message.lower() or "not a web address" in message.lower()
    # the host as given, never the address it stands for
    assert all(address not in message or address in url for address in ("127.0.0.1", "10.0.0.1"))


@pytest.mark.parametrize("url", ["http://0x7f000001/", "http://127.1/", "http://localhost./", "http://intranet/"])
def test_and_when_a_subscription_is_changed(client, make, url):
    headers = make.headers("integration")
    hook = client.post(HOOKS, headers=headers, json={"url": "https://example.com/h", "events": ["*"]}).json
    _refused(client.patch(f"{HOOKS}/{hook['id']}", headers=headers, json={"url": url}))
    assert client.get(f"{HOOKS}/{hook['id']}", headers=headers).json["url"] == "https://example.com/h"


def test_a_name_that_resolves_inside_is_refused_without_saying_where(client, make, resolves_to):
    headers = make.headers("integration")
    resolves_to("127.0.0.1")
    message = _refused(client.post(HOOKS, headers=headers, json={"url": f"https://{FAKE_NAME}/h", "events": ["*"]}))
    assert "resolves to a private address" in message and "127.0.0.1" not in message
    resolves_to(PUBLIC)
    hook = client.post(HOOKS, headers=headers, json={"url": f"https://{FAKE_NAME}/h", "events": ["*"]})
    assert hook.status_code == 201
    resolves_to("10.20.30.40")
    message = _refused(
        client.patch(f"{HOOKS}/{hook.json['id']}", headers=headers, json={"url": f"http://{FAKE_NAME}/"})
    )
    assert "resolves to a private address" in message and "10.20.30.40" not in message


def test_private_targets_are_allowed_when_configured(client, make, allow_private):
    headers = make.headers("integration")
    for url in ("http://127.1:9/x", "http://intranet/", "http://localhost./"):
        assert client.post(HOOKS, headers=headers, json={"url": url, "events": ["*"]}).status_code == 201, url


def test_the_delivery_log_does_not_show_what_the_name_resolved_to(
    committed_db, committed_client, committed_make, receiver, resolves_to
):
    """Resolved to a public address when saved, to a loopback one at delivery (DNS rebinding): the
    delivery is refused, and its log says why without the address."""
    headers = committed_make.headers("integration")
    port = receiver.url.split(":")[2].split("/")[0]
    resolves_to(PUBLIC)
    created = committed_client.post(
        HOOKS, headers=headers, json={"url": f"http://{FAKE_NAME}:{port}/hook", "events": ["ci.created"]}
    )
    assert created.status_code == 201, created.json
    resolves_to("127.0.0.1")
    committed_client.post("/api/v1/cis", headers=headers, json={"name": "rebound", "ci_class": "server"})
    services.sweep()
    committed_db.session.rollback()
    delivery = committed_db.session.scalar(select(WebhookDelivery))
    assert delivery.attempts == 1 and delivery.response_code is None and receiver.requests == []
    shown = committed_client.get(f"{HOOKS}/{created.json['id']}/deliveries/{delivery.id}", headers=headers).json
    assert "resolves to a private address" in shown["error"]
    assert "127.0.0.1" not in str(shown)


def test_the_sender_refuses_every_notation_at_delivery_too():
    sender = transport.Sender(timeout=2, allow_private=False)
    try:
        for url in INSIDE:
            result = sender.post(url, b"{}", {})
            assert result.status is None and ("may not target" in result.error or "not a valid" in result.error), url
    finally:
        sender.close()
