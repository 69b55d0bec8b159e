"""Webhook subscriptions, the dispatcher and deliveries.

The change log is the outbox: the dispatcher reads it with the gap-free feed cursor kept per
subscription and writes one delivery row per matching change (unique per subscription and change,
so dispatching twice never doubles a delivery). Delivery jobs send those rows; the periodic sweep
dispatches what was committed while Redis was down and re-queues what is due for a retry.
"""

from __future__ import annotations

import json
import logging
import secrets as secrets_module
import time
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cairn.audit.services import Cursor, feed
from cairn.config import setting
from cairn.db import MAX_ID, db, utcnow
from cairn.errors import Conflict, Invalid, NotFound
from cairn.jobs import enqueue
from cairn.outbox import Consumer, PassResult, held_back, retry_at
from cairn.uow import after_commit, checkpoint
from cmdb.models import ConfigurationItem
from integrations.webhooks import transport
from integrations.webhooks.models import Webhook, WebhookDelivery

log = logging.getLogger("cairn.webhooks")

EVENTS: dict[tuple[str, str], str] = {
    ("ci", "create"): "ci.created",
    ("ci", "update"): "ci.updated",
    ("ci", "delete"): "ci.deleted",
    ("relationship", "create"): "relationship.created",
    ("relationship", "delete"): "relationship.deleted",
    ("ticket", "create"): "ticket.created",
    ("ticket", "update"): "ticket.updated",
    ("ticket", "transition"): "ticket.transitioned",
    ("ticket", "comment"): "ticket.commented",
}
EVENT_NAMES = tuple(EVENTS.values())
# Seconds to wait after the 1st, 2nd, ... failed attempt; after the last one the delivery has failed.
RETRY_SCHEDULE = (60, 300, 1800, 7200, 21600, 86400)
JITTER = 0.2
BATCH = 100
OPERATORS = ("eq", "ne", "in", "not_in", "contains")


# ---------------------------------------------------------------------------------------------
# Settings


def allow_private() -> bool:
    return setting("CAIRN_WEBHOOK_ALLOW_PRIVATE", False)


def _key_material() -> str:
    return current_app.config.get("CAIRN_WEBHOOK_KEY") or current_app.config["SECRET_KEY"]


def timeout_seconds() -> float:
    return setting("CAIRN_WEBHOOK_TIMEOUT", 10.0)


def disable_after() -> timedelta:
    return timedelta(seconds=setting("CAIRN_WEBHOOK_DISABLE_AFTER_SECONDS", 86400))


# ---------------------------------------------------------------------------------------------
# Subscriptions


def get_webhook(webhook_id: int, *, for_update: bool = False) -> Webhook:
    lock = {"of": Webhook} if for_update else None
    hook = db.session.get(Webhook, webhook_id, with_for_update=lock) if 0 < webhook_id <= MAX_ID else None
    if hook is None:
        raise NotFound(f"No webhook with id {webhook_id}.")
    return hook


def list_webhooks():
    return select(Webhook).order_by(Webhook.id)


def _check_events(events: list[str]) -> list[str]:
    bad = [e for e in events if e not in EVENT_NAMES and e != "*" and not _is_wildcard(e)]
    if bad or not events:
        raise Invalid(
            "Unknown events.",
            errors={"events": [f"Use some of {', '.join(EVENT_NAMES)} (or ci.*, ticket.*, *); not {', '.join(bad)}."]},
        )
    return list(dict.fromkeys(events))


def _is_wildcard(event: str) -> bool:
    prefix = event[:-2] if event.endswith(".*") else None
    return prefix is not None and any(name.startswith(prefix + ".") for name in EVENT_NAMES)


def _check_url(url: str) -> str:
    try:
        transport.vet_url(url, allow_private())
    except transport.UnsafeTarget as exc:
        raise Invalid("The URL cannot receive webhooks.", errors={"url": [str(exc)]})
    return url


def create_webhook(data: dict[str, Any]) -> tuple[Webhook, str]:
    """Subscribe ``url`` to ``events``; returns the webhook and its secret (the one given, or a new
    one, shown to the caller once). New subscriptions start at the current end of the change log."""
    secret = data.get("secret") or secrets_module.token_urlsafe(32)
    end = db.session.execute(
        select(ChangeLog.txid, ChangeLog.id).order_by(ChangeLog.txid.desc(), ChangeLog.id.desc()).limit(1)
    ).first()
    hook = Webhook(
        name=data.get("name") or "",
        url=_check_url(data["url"]),
        events=_check_events(data["events"]),
        conditions=data.get("conditions") or [],
        secret_encrypted=transport.encrypt_secret(secret, _key_material()),
        active=data.get("active", True),
        cursor_txid=end[0] if end else 0,
        cursor_id=end[1] if end else 0,
    )
    db.session.add(hook)
    db.session.flush()
    after_commit(forget_active_cache)
    return hook, secret


def update_webhook(hook: Webhook, data: dict[str, Any]) -> Webhook:
    """Change a subscription; re-enabling clears the failure state; a new ``secret`` replaces the old."""
    if "url" in data:
        hook.url = _check_url(data["url"])
    if "events" in data:
        hook.events = _check_events(data["events"])
    for key in ("name", "conditions"):
        if key in data:
            setattr(hook, key, data[key] or ([] if key == "conditions" else ""))
    if data.get("secret"):
        hook.secret_encrypted = transport.encrypt_secret(data["secret"], _key_material())
    if "active" in data:
        if data["active"] and not hook.active:
            hook.disabled_reason, hook.failing_since = "", None
        hook.active = data["active"]
    db.session.flush()
    after_commit(forget_active_cache)
    return hook


def delete_webhook(hook: Webhook) -> None:
    db.session.delete(hook)
    db.session.flush()
    after_commit(forget_active_cache)


def secret_of(hook: Webhook) -> str:
    return transport.decrypt_secret(hook.secret_encrypted, _key_material())


def deliveries_of(hook: Webhook, status: str | None = None):
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    return stmt.order_by(WebhookDelivery.id.desc())


def get_delivery(hook: Webhook, delivery_id: int) -> WebhookDelivery:
    delivery = db.session.get(WebhookDelivery, delivery_id) if 0 < delivery_id <= MAX_ID else None
    if delivery is None or delivery.webhook_id != hook.id:
        raise NotFound(f"Webhook {hook.id} has no delivery {delivery_id}.")
    return delivery


def redeliver(hook: Webhook, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now (same id and data, a fresh timestamp and signature)."""
    if not hook.active:
        raise Conflict(f"Webhook {hook.id} is disabled ({hook.disabled_reason or 'by hand'}); enable it first.")
    delivery.status = "pending"
    delivery.next_attempt_at = utcnow()
    db.session.flush()
    enqueue("integrations.webhooks.tasks.deliver", delivery.id)
    return delivery


# ---------------------------------------------------------------------------------------------
# Matching


def _wanted(hook: Webhook, event: str) -> bool:
    for pattern in hook.events:
        if pattern in ("*", event) or (pattern.endswith(".*") and event.startswith(pattern[:-1])):
            return True
    return False


def _lookup(obj: dict, field: str):
    value: Any = obj
    for part in field.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def matches(conditions: list[dict], obj: dict) -> bool:
    """All conditions hold for ``obj`` (``{"field": "criticality", "op": "eq", "value": "critical"}``;
    ops eq, ne, in, not_in, contains; dotted fields reach into attributes)."""
    for condition in conditions or []:
        actual = _lookup(obj, condition["field"])
        op, expected = condition.get("op", "eq"), condition.get("value")
        if op == "eq" and actual != expected:
            return False
        if op == "ne" and actual == expected:
            return False
        if op == "in" and actual not in (expected or []):
            return False
        if op == "not_in" and actual in (expected or []):
            return False
        if op == "contains" and not (isinstance(actual, (list, str)) and expected in actual):
            return False
    return True


_CI_COLUMNS = (
    "id", "name", "ci_class", "status", "criticality", "asset_tag", "serial_number", "vendor", "model",
    "owner_team_id", "assigned_to_id", "location_id", "attributes", "custom_fields",
)  # fmt: skip


def _ci_snapshots(ci_ids: set[int]) -> dict[int, dict]:
    if not ci_ids:
        return {}
    columns = [getattr(ConfigurationItem, c) for c in _CI_COLUMNS]
    rows = db.session.execute(select(*columns).where(ConfigurationItem.id.in_(ci_ids)))
    return {row.id: dict(zip(_CI_COLUMNS, row, strict=True)) for row in rows}


def _object_of(change: ChangeLog, snapshots: dict[int, dict]) -> dict:
    """The object as it stands after the change: the CI's current row (for CIs), else the values
    the change recorded (before-values for a delete)."""
    side = 0 if change.action == "delete" else 1
    recorded = {k: v[side] for k, v in (change.changes or {}).items() if isinstance(v, list) and len(v) == 2}
    if change.object_type == "ci" and change.object_id in snapshots:
        return {**recorded, **snapshots[change.object_id]}
    return {"id": change.object_id, **recorded}


def payload_of(change: ChangeLog, obj: dict) -> dict:
    return {
        "object_type": change.object_type,
        "object_id": change.object_id,
        "action": change.action,
        "summary": change.summary,
        "actor": change.actor,
        "request_id": change.request_id,
        "cursor": f"{change.txid}.{change.id}",
        "changes": change.changes,
        "object": obj,
    }


# ---------------------------------------------------------------------------------------------
# Dispatching: change log -> delivery rows


CONSUMER = "webhooks"
WATCHED_TYPES = frozenset(t for t, _a in EVENTS)


def dispatch_pass(limit: int = 1000) -> PassResult:
    """One page of new changes into deliveries, for every active subscription (the outbox
    consumer's pass; the kernel commits after it and calls it again while ``more``)."""
    result = PassResult()
    hook_ids = list(db.session.scalars(select(Webhook.id).where(Webhook.active.is_(True)).order_by(Webhook.id)))
    for hook_id in hook_ids:
        new, more, waiting = _dispatch_page(hook_id, limit)
        result.created += len(new)
        result.more = result.more or more
        result.held_back = result.held_back or waiting
    return result


def dispatch(limit: int = 1000, max_rounds: int = 50) -> int:
    """Turn new changes into deliveries for every active subscription now; returns how many."""
    created = 0
    for _ in range(max_rounds):
        result = dispatch_pass(limit)
        checkpoint()
        created += result.created
        if not result.more:
            break
    return created


def _dispatch_page(hook_id: int, limit: int) -> tuple[list[int], bool, bool]:
    hook = db.session.get(Webhook, hook_id, with_for_update={"of": Webhook, "skip_locked": True})
    if hook is None or not hook.active:
        return [], False, False
    types = sorted({t for (t, _a), e in EVENTS.items() if _wanted(hook, e)})
    changes, cursor = feed(Cursor(hook.cursor_txid, hook.cursor_id), limit, object_types=types)
    snapshots = _ci_snapshots({c.object_id for c in changes if c.object_type == "ci"})
    now = utcnow()
    rows = []
    for change in changes:
        event = EVENTS.get((change.object_type, change.action))
        if event is None or not _wanted(hook, event):
            continue
        obj = _object_of(change, snapshots)
        if not matches(hook.conditions, obj):
            continue
        rows.append(
            WebhookDelivery(
                webhook_id=hook.id,
                change_id=change.id,
                event=event,
                payload={"occurred_at": change.at.isoformat(), "data": payload_of(change, obj)},
                status="pending",
                next_attempt_at=now,
            )
        )
    db.session.add_all(rows)
    hook.cursor_txid, hook.cursor_id = cursor.txid, cursor.id
    db.session.flush()
    full = len(changes) == limit
    return [r.id for r in rows], full, not full and held_back(cursor, types)


# ---------------------------------------------------------------------------------------------
# Delivering


def body_of(delivery: WebhookDelivery, timestamp: int) -> bytes:
    """The raw body: ``{id, event, occurred_at, data}`` and the ``timestamp`` of X-Cairn-Timestamp,
    so the signature over the body covers the timestamp too (a replayed body is recognisably old)."""
    document = {
        "id": delivery.id,
        "event": delivery.event,
        "occurred_at": delivery.payload.get("occurred_at"),
        "timestamp": timestamp,
        "data": delivery.payload.get("data"),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str).encode()


# Outcomes are committed after this many deliveries (and at the end): a worker killed mid-batch
# sends at most this many again (receivers dedupe by delivery id, X-Cairn-Delivery).
COMMIT_EVERY = 10


def deliver(delivery_ids: list[int]) -> dict[str, int]:
    """Send these deliveries (those still pending; ones being sent elsewhere are skipped) in id
    order, committing the outcomes every few; returns counts."""
    sender = transport.Sender(timeout_seconds(), allow_private())
    counts = {"delivered": 0, "retrying": 0, "failed": 0, "skipped": 0}
    secrets_cache: dict[int, str] = {}
    try:
        rows = db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.id.in_(delivery_ids))
            .order_by(WebhookDelivery.id)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        ).all()
        counts["skipped"] = len(set(delivery_ids)) - len(rows)
        for done, delivery in enumerate(rows, 1):
            counts[_deliver_one(delivery, sender, secrets_cache)] += 1
            if done % COMMIT_EVERY == 0:
                db.session.flush()
                checkpoint()
                if done < len(rows):  # the rest stays ours: lock it again (the commit let it go), fresh
                    db.session.scalars(
                        select(WebhookDelivery)
                        .where(WebhookDelivery.id.in_([r.id for r in rows[done:]]))
                        .with_for_update(of=WebhookDelivery)
                        .execution_options(populate_existing=True)
                    ).all()
        db.session.flush()
        checkpoint()
    finally:
        sender.close()
    return counts


def _deliver_one(delivery: WebhookDelivery, sender: transport.Sender, secrets_cache: dict) -> str:
    now = utcnow()
    if delivery.status != "pending":
        return "skipped"
    hook = db.session.get(Webhook, delivery.webhook_id)
    if hook is None or not hook.active:
        return "skipped"
    if hook.id not in secrets_cache:
        secrets_cache[hook.id] = secret_of(hook)
    timestamp = int(time.time())
    body = body_of(delivery, timestamp)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Cairn-Webhooks/1",
        "X-Cairn-Event": delivery.event,
        "X-Cairn-Delivery": str(delivery.id),
        "X-Cairn-Timestamp": str(timestamp),
        "X-Cairn-Signature": transport.sign(secrets_cache[hook.id], body),
    }
    response = sender.post(hook.url, body, headers)
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_code = response.status
    delivery.duration_ms = response.duration_ms
    delivery.error = response.error or ("" if response.ok else f"HTTP {response.status}")
    delivery.log = [
        *(delivery.log or [])[-19:],
        {"at": now.isoformat(), "status": response.status, "ms": response.duration_ms, "error": delivery.error},
    ]
    if response.ok:
        delivery.status, delivery.next_attempt_at = "delivered", None
        if hook.failing_since is not None:
            hook.failing_since = None
        return "delivered"
    if hook.failing_since is None:
        hook.failing_since = now
    elif now - hook.failing_since >= disable_after():
        hook.active = False
        hook.disabled_reason = f"every delivery failed since {hook.failing_since.isoformat()}"
        log.warning("webhook %s disabled: failing since %s", hook.id, hook.failing_since)
    next_attempt = retry_at(delivery.attempts, RETRY_SCHEDULE, JITTER)
    if next_attempt is not None:
        delivery.next_attempt_at = next_attempt
        return "retrying"
    delivery.status, delivery.next_attempt_at = "failed", None
    return "failed"


# ---------------------------------------------------------------------------------------------
# Queueing


def due_deliveries(limit: int = 5000) -> list[tuple[int, int]]:
    """(webhook id, delivery id) of pending deliveries whose time has come, oldest first."""
    rows = db.session.execute(
        select(WebhookDelivery.webhook_id, WebhookDelivery.id)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(
            Webhook.active.is_(True),
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= utcnow(),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    ).tuples()
    return list(rows)


def queue_due(limit: int = 5000) -> int:
    """Queue one sender job per subscription that has deliveries due (new, retries, ones whose job
    was lost); returns how many due deliveries have a sender job queued (or ran, inline). A sender
    job already waiting for the same subscription is not queued twice (job id); one that is
    running gets one more run."""
    from cairn.jobs import enqueue_now  # the deliveries are committed: queue them now

    counts: dict[int, int] = {}
    for hook_id, _delivery_id in due_deliveries(limit):
        counts[hook_id] = counts.get(hook_id, 0) + 1
    uses_redis = bool(current_app.config.get("REDIS_URL"))
    queued = 0
    for hook_id, count in counts.items():
        job = enqueue_now(DELIVER_JOB, hook_id, job_id=f"cairn-webhook-{hook_id}")
        if job is not None or not uses_redis:
            queued += count
    return queued


DELIVER_JOB = "integrations.webhooks.tasks.deliver_due"
SENDER_LEASE_SECONDS = 120


def deliver_due(hook_id: int) -> dict[str, int]:
    """Send a subscription's due deliveries in change order, one sender at a time (a lease per
    subscription), so a receiver sees each object's events in the order they happened. A failed
    delivery waits for its retry; later ones go on (the body's cursor tells the order)."""
    from cairn.jobs import lease

    counts = {"delivered": 0, "retrying": 0, "failed": 0, "skipped": 0}

    def send(renew) -> None:
        while True:
            ids = list(
                db.session.scalars(
                    select(WebhookDelivery.id)
                    .where(
                        WebhookDelivery.webhook_id == hook_id,
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= utcnow(),
                    )
                    .order_by(WebhookDelivery.id)
                    .limit(BATCH)
                )
            )
            if not ids:
                return
            outcomes = deliver(ids)
            for outcome, count in outcomes.items():
                counts[outcome] += count
            if outcomes["skipped"] == len(ids):  # disabled meanwhile, or being sent by hand
                return
            renew()

    if not lease.exclusively(f"webhook:{hook_id}", SENDER_LEASE_SECONDS, send):
        return {"deferred": 1}  # the running sender makes one more pass
    return counts


def sweep() -> dict[str, int]:
    """Dispatch new changes and queue what is due now (`cairn webhooks sweep`); the outbox
    consumer does the same under its lease."""
    created = dispatch()
    queued = queue_due()
    checkpoint()
    return {"dispatched": created, "queued": queued}


_active_cache: dict[str, tuple[float, bool]] = {}
ACTIVE_CACHE_SECONDS = 30.0


def has_active_webhooks() -> bool:
    """Whether any subscription is active (cached per process for 30 s, dropped on every change of
    a subscription here): a commit nudges the consumer only when someone listens."""
    key = str(db.engine.url)
    cached = _active_cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < ACTIVE_CACHE_SECONDS:
        return cached[1]
    active = db.session.execute(select(Webhook.id).where(Webhook.active.is_(True)).limit(1)).first() is not None
    _active_cache[key] = (now, active)
    return active


def forget_active_cache() -> None:
    _active_cache.clear()


def consumer() -> Consumer:
    """Webhooks as an outbox consumer of the change log."""
    return Consumer(
        name=CONSUMER,
        object_types=WATCHED_TYPES,
        run_pass=dispatch_pass,
        queue_due=queue_due,
        is_active=has_active_webhooks,
    )


def stats() -> dict[str, int]:
    rows = db.session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))
    return dict(rows.all())


def install() -> None:
    """Event pipeline: webhooks become an outbox consumer of the change log."""
    from cairn.outbox import register

    register(consumer())
