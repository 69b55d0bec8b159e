"""Durable jobs: an import or a discovery run accepted while Redis is down is swept once it is back
and run by a real worker; so is mail (tests/integrations/email/test_intake.py)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select


def _discovery_items(n: int) -> list[dict]:
    return [{"hostname": f"durable-{i}", "ci_class": "server", "serial_number": f"DUR{i:04d}"} for i in range(n)]


def test_jobs_accepted_while_redis_is_down_are_swept_and_run(app, committed_db, committed_make, redis_url):
    from cairn.jobs import execute
    from cairn.jobs.worker import run_worker
    from cmdb.models import ConfigurationItem
    from integrations.sync.models import SyncJob

    headers = committed_make.headers("integration")
    client = app.test_client()
    queue = f"test-{uuid.uuid4().hex[:8]}"
    saved = {k: app.config.get(k) for k in ("REDIS_URL", "CAIRN_QUEUE_NAME", "CAIRN_DISCOVERY_INLINE_ITEMS")}
    app.config.update(REDIS_URL="redis://127.0.0.1:1/0", CAIRN_QUEUE_NAME=queue, CAIRN_DISCOVERY_INLINE_ITEMS="2")
    try:
        imported = client.post(
            "/api/v1/imports/cis",
            data="name,ci_class\ndurable-import-1,server\ndurable-import-2,server\n",
            headers={**headers, "Content-Type": "text/csv"},
        )
        discovered = client.post(
            "/api/v1/discovery/runs", json={"source": "agent", "items": _discovery_items(3)}, headers=headers
        )
        assert imported.status_code == 202 and discovered.status_code == 202
        ids = [imported.get_json()["id"], discovered.get_json()["id"]]
        committed_db.session.remove()
        rows = committed_db.session.scalars(select(SyncJob).where(SyncJob.id.in_(ids))).all()
        assert {(r.status, r.enqueued_at) for r in rows} == {("queued", None)}, "stored, not in any queue"
        app.config["REDIS_URL"] = redis_url
        assert execute("cairn.jobs.durable.sweep") == {
            "mail": 0,
            "import": 1,
            "discovery": 1,
            "events": 0,
            "sla_recompute": 0,
        }
        nothing_left = {"mail": 0, "import": 0, "discovery": 0, "events": 0, "sla_recompute": 0}
        assert execute("cairn.jobs.durable.sweep") == nothing_left, "queued once"
        run_worker([queue], burst=True)
    finally:
        app.config.update(saved)
    committed_db.session.remove()
    rows = committed_db.session.scalars(select(SyncJob).where(SyncJob.id.in_(ids))).all()
    assert [r.status for r in rows] == ["done", "done"]
    names = select(func.count()).where(ConfigurationItem.name.like("durable-%"))
    assert committed_db.session.scalar(names) == 5
