"""Webhooks: subscriptions, signed deliveries read from the change log, retries, redelivery,
auto-disable, SSRF protection, and delivery after Redis comes back (real receiver, real worker)."""

import ipaddress
import os
import socket
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, update

from cairn.db import utcnow
from integrations.webhooks import services, transport
from integrations.webhooks.models import Webhook, WebhookDelivery

ROOT = Path(__file__).resolve().parents[3]
HOOKS = "/api/v1/webhooks"


def _fresh(db):
    db.session.rollback()
    db.session.expire_all()


def _subscribe(client, headers, url, **extra):
    response = client.post(HOOKS, headers=headers, json={"url": url, "events": ["ci.created"], **extra})
    assert response.status_code == 201, response.json
    return response.json


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/",
        "http://user:pw@example.com/",
        "not a url",
    ],
)
def test_urls_that_point_inside_or_are_not_http_are_refused(client, make, url):
    response = client.post(HOOKS, headers=make.headers("integration"), json={"url": url, "events": ["ci.created"]})
    assert response.status_code == 422 and "url" in response.json["errors"]


def test_subscription_crud(db, client, make):
    headers = make.headers("integration")
    bad = client.post(HOOKS, headers=headers, json={"url": "https://example.com/h", "events": ["ci.exploded"]})
    assert bad.status_code == 422 and "events" in bad.json["errors"]
    created = _subscribe(
        client, headers, "https://example.com/h", conditions=[{"field": "criticality", "value": "high"}]
    )
    assert len(created["secret"]) >= 32
    stored = db.session.get(Webhook, created["id"])
    assert created["secret"] not in stored.secret_encrypted and services.secret_of(stored) == created["secret"]
    listed = client.get(HOOKS, headers=headers).json
    assert [h["id"] for h in listed] == [created["id"]] and listed[0]["secret"] is None
    patched = client.patch(
        f"{HOOKS}/{created['id']}", headers=headers, json={"events": ["ci.*", "ticket.transitioned"]}
    )
    assert patched.status_code == 200 and patched.json["events"] == ["ci.*", "ticket.transitioned"]
    assert client.get(HOOKS, headers=make.headers("agent")).status_code == 403
    assert client.delete(f"{HOOKS}/{created['id']}", headers=headers).status_code == 204
    assert client.get(f"{HOOKS}/{created['id']}", headers=headers).status_code == 404


def test_signed_deliveries_with_conditions_and_no_duplicates(
    committed_db, committed_client, committed_make, receiver, allow_private
):
    headers = committed_make.headers("integration")
    hook = _subscribe(
        committed_client,
        headers,
        receiver.url,
        events=["ci.created", "ci.updated"],
        conditions=[{"field": "criticality", "op": "eq", "value": "critical"}],
        secret="s3cret-s3cret-s3cret",
    )
    receiver.secret = "s3cret-s3cret-s3cret"
    critical = committed_client.post(
        "/api/v1/cis", headers=headers, json={"name": "core-db", "ci_class": "database", "criticality": "critical"}
    ).json
    committed_client.post("/api/v1/cis", headers=headers, json={"name": "printer", "ci_class": "printer"})
    assert services.sweep()["dispatched"] == 1
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["signature_ok"] is True
    body = request["json"]
    assert body["event"] == "ci.created" and body["data"]["object_id"] == critical["id"]
    assert set(body) == {"id", "event", "occurred_at", "timestamp", "data"}
    assert request["headers"]["x-cairn-timestamp"] == str(body["timestamp"])
    assert request["headers"]["x-cairn-delivery"] == str(body["id"])
    assert body["data"]["object"]["name"] == "core-db" and body["data"]["changes"]["name"] == [None, "core-db"]
    # nothing new: nothing sent again
    assert services.sweep() == {"dispatched": 0, "queued": 0} and len(receiver.requests) == 1
    log = committed_client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=headers).json
    assert len(log) == 1 and log[0]["status"] == "delivered" and log[0]["response_code"] == 200
    assert log[0]["attempts"] == 1 and log[0]["duration_ms"] is not None and log[0]["log"][0]["status"] == 200


def test_retries_back_off_then_redelivery_and_auto_disable(
    committed_db, committed_client, committed_make, receiver, allow_private
):
    headers = committed_make.headers("integration")
    hook = _subscribe(committed_client, headers, receiver.url)
    receiver.status = 500
    committed_client.post("/api/v1/cis", headers=headers, json={"name": "a", "ci_class": "server"})
    services.sweep()
    _fresh(committed_db)  # the delivery job committed in its own session
    delivery = committed_db.session.scalar(select(WebhookDelivery))
    waited = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.response_code == 500
    assert 60 * 0.8 <= waited <= 60 * 1.2
    services.sweep()
    assert len(receiver.requests) == 1, "not due yet: not sent again"
    committed_db.session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    committed_db.session.commit()
    services.sweep()
    _fresh(committed_db)
    delivery = committed_db.session.scalar(select(WebhookDelivery))
    waited = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert delivery.attempts == 2 and 300 * 0.8 <= waited <= 300 * 1.2 and len(receiver.requests) == 2
    # the receiver is fixed: redeliver by hand, now
    receiver.status = 200
    again = committed_client.post(f"{HOOKS}/{hook['id']}/deliveries/{delivery.id}/redeliver", headers=headers)
    assert again.status_code == 202 and again.json["status"] == "pending", "queued; sent once the request commits"
    sent = committed_client.get(f"{HOOKS}/{hook['id']}/deliveries/{delivery.id}", headers=headers).json
    assert sent["status"] == "delivered" and sent["attempts"] == 3
    assert [r["json"]["id"] for r in receiver.requests] == [delivery.id] * 3
    # a day of failures disables the subscription
    receiver.status = 503
    committed_client.post("/api/v1/cis", headers=headers, json={"name": "b", "ci_class": "server"})
    committed_db.session.execute(update(Webhook).values(failing_since=utcnow() - timedelta(hours=25)))
    committed_db.session.commit()
    services.sweep()
    shown = committed_client.get(f"{HOOKS}/{hook['id']}", headers=headers).json
    assert shown["active"] is False and "failed" in shown["disabled_reason"]
    refused = committed_client.post(f"{HOOKS}/{hook['id']}/deliveries/{delivery.id}/redeliver", headers=headers)
    assert refused.status_code == 409
    enabled = committed_client.patch(f"{HOOKS}/{hook['id']}", headers=headers, json={"active": True}).json
    assert enabled["active"] is True and enabled["failing_since"] is None


def test_names_are_resolved_and_the_address_checked(app, receiver):
    with pytest.raises(transport.UnsafeTarget):
        transport.resolve("localhost", 80, allow_private=False)
    sender = transport.Sender(timeout=2, allow_private=False)
    port = receiver.url.split(":")[2].split("/")[0]
    # the machine's own name passes the name check; its resolved (local) address is what is refused
    name = socket.gethostname()
    if ipaddress.ip_address(socket.getaddrinfo(name, 80)[0][4][0]).is_global:
        pytest.skip("this machine's name resolves to a public address")
    result = sender.post(f"http://{name}:{port}/hook", b"{}", {})
    assert result.status is None and "may not target" in result.error and receiver.requests == []
    sender.close()


def test_committed_while_redis_is_down_delivered_once_it_is_back(
    app, committed_db, committed_client, committed_make, receiver, allow_private, redis_url, database_url, instance_dir
):
    headers = committed_make.headers("integration")
    _subscribe(committed_client, headers, receiver.url)
    queue_name = f"test-{uuid.uuid4().hex[:8]}"
    previous = app.config["REDIS_URL"], app.config["CAIRN_QUEUE_NAME"]
    app.config.update(REDIS_URL="redis://127.0.0.1:1/0", CAIRN_QUEUE_NAME=queue_name)
    try:
        created = committed_client.post("/api/v1/cis", headers=headers, json={"name": "during", "ci_class": "server"})
        assert created.status_code == 201
        assert services.sweep() == {"dispatched": 1, "queued": 0}
        assert receiver.requests == []
        app.config["REDIS_URL"] = redis_url
        assert services.sweep() == {"dispatched": 0, "queued": 1}
        assert services.sweep() == {"dispatched": 0, "queued": 1}, "still due: its sender job waits in Redis"
        waiting = redis.Redis.from_url(redis_url).llen(f"rq:queue:{queue_name}")
        assert waiting == 1, "one sender job per subscription, not one per sweep"
    finally:
        app.config["REDIS_URL"], _ = previous
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CAIRN_QUEUE_NAME": queue_name,
        "CAIRN_INSTANCE_PATH": str(instance_dir),
        "CAIRN_WEBHOOK_ALLOW_PRIVATE": "1",
        "CAIRN_LOG_LEVEL": "WARNING",
        "SECRET_KEY": app.config["SECRET_KEY"],
    }
    app.config["CAIRN_QUEUE_NAME"] = previous[1]
    cairn = Path(sys.executable).parent / "cairn"
    result = subprocess.run(
        [str(cairn), "worker", "--burst"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["json"]["data"]["object_id"] for r in receiver.requests] == [created.json["id"]]
    _fresh(committed_db)
    assert committed_db.session.scalar(select(WebhookDelivery.status)) == "delivered"
