"""The change log: one row per write, in the same transaction, paged as a gap-free feed."""

import random
import threading
import time

from sqlalchemy import select

from cairn.audit.context import Actor, acting_as
from cairn.audit.models import ChangeLog
from cairn.db import sqlite_begin_immediate


def _feed(client, headers, after=None, **params):
    query = {"limit": 1000, **params}
    if after:
        query["after"] = after
    response = client.get("/api/v1/changelog", headers=headers, query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def test_writes_are_recorded_with_actor_request_id_and_diff(db, client, make):
    headers = make.headers("agent")
    created = client.post(
        "/api/v1/cis", headers={**headers, "X-Request-ID": "req-create"}, json={"name": "a", "ci_class": "server"}
    ).json
    client.patch(f"/api/v1/cis/{created['id']}", headers=headers, json={"criticality": "low"})
    rows = list(db.session.scalars(select(ChangeLog).where(ChangeLog.object_type == "ci").order_by(ChangeLog.id)))
    assert [r.action for r in rows] == ["create", "update"]
    assert rows[0].request_id == "req-create" and rows[0].actor.startswith("agent")
    assert rows[0].actor_id is not None
    assert rows[0].changes["name"] == [None, "a"]
    assert rows[1].changes == {"criticality": ["medium", "low"]}


def test_a_failed_request_leaves_no_change_row(db, client, admin, make):
    ci = make.ci()
    before = db.session.scalar(select(ChangeLog.id).order_by(ChangeLog.id.desc()).limit(1))
    client.patch(f"/api/v1/cis/{ci.id}", headers=admin, json={"name": "ok", "status": "disposed"})
    after = db.session.scalar(select(ChangeLog.id).order_by(ChangeLog.id.desc()).limit(1))
    assert before == after
    db.session.expire_all()
    assert client.get(f"/api/v1/cis/{ci.id}", headers=admin).json["name"] == ci.name


def test_feed_pages_with_cursor_and_filters(committed_client, committed_make):
    headers = committed_make.headers("integration")
    for index in range(5):
        committed_make.ci(name=f"ci-{index}")
    first = _feed(committed_client, headers, limit=3, object_type="ci")
    assert [c["changes"]["name"][1] for c in first["changes"]] == ["ci-0", "ci-1", "ci-2"]
    second = _feed(committed_client, headers, after=first["next_cursor"], limit=3, object_type="ci")
    assert [c["changes"]["name"][1] for c in second["changes"]] == ["ci-3", "ci-4"]
    empty = _feed(committed_client, headers, after=second["next_cursor"], object_type="ci")
    assert empty["changes"] == [] and empty["next_cursor"] == second["next_cursor"]
    users = _feed(committed_client, headers, object_type="user", action="create")
    assert users["changes"] and {c["object_type"] for c in users["changes"]} == {"user"}
    assert set(first["changes"][0]) >= {"cursor", "at", "actor", "object_type", "object_id", "action", "changes"}


def test_bad_cursor_is_422(committed_client, committed_make):
    headers = committed_make.headers("auditor")
    for bad in ("abc", "1.2.3", "-1.5", "99999999999999999999.1"):
        response = committed_client.get("/api/v1/changelog", headers=headers, query_string={"after": bad})
        assert response.status_code == 422, bad
    assert committed_client.get("/api/v1/changelog?limit=5000", headers=headers).status_code == 422
    assert committed_client.get("/api/v1/changelog", headers=committed_make.headers("requester")).status_code == 403


def test_concurrent_writers_one_reader_sees_every_change_exactly_once(app, committed_client, committed_make):
    """Writers hold their transactions open for random times, so commits land out of id order;
    a reader paging all along must still see every change once."""
    from cairn.db import db
    from cmdb.services import create_ci

    headers = committed_make.headers("integration")
    writers, per_writer = 4, 15
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write(worker: int):
        rng = random.Random(worker)
        try:
            with app.app_context():
                token = sqlite_begin_immediate.set(True)
                with acting_as(Actor(f"writer-{worker}")):
                    for index in range(per_writer):
                        create_ci({"name": f"w{worker}-{index}", "ci_class": "server"})
                        db.session.flush()
                        time.sleep(rng.uniform(0, 0.02))  # keep the transaction open a while
                        db.session.commit()
                sqlite_begin_immediate.reset(token)
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def read():
        cursor = None
        client = app.test_client()
        while True:
            finished = stop.is_set()
            page = _feed(client, headers, after=cursor, object_type="ci")
            seen.extend(change["id"] for change in page["changes"])
            cursor = page["next_cursor"]
            if finished and not page["changes"]:
                return
            time.sleep(0.002)

    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    reader.join(timeout=60)
    assert not errors, errors
    with app.app_context():
        all_ids = list(db.session.scalars(select(ChangeLog.id).where(ChangeLog.object_type == "ci")))
        db.session.remove()
    assert len(all_ids) == writers * per_writer
    assert sorted(seen) == sorted(all_ids), "every change exactly once"


def _open_transaction_with_an_id(url):
    """A psycopg connection to ``url`` inside a transaction that holds a transaction id (a write)."""
    import psycopg

    conn = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    conn.execute("CREATE TEMP TABLE held_open (n int)")
    conn.execute("INSERT INTO held_open VALUES (1)")
    return conn


def test_a_transaction_open_in_another_database_holds_nothing_back(app, committed_client, committed_make):
    """The feed waits for older transactions of its own database only: one left open in another
    database of the same server (another application, a benchmark) does not stall it; one open in
    ours still does, until it ends."""
    import pytest

    from cairn.db import db

    with app.app_context():
        url = db.engine.url
    if url.get_backend_name() != "postgresql":
        pytest.skip("the horizon is PostgreSQL's (SQLite writers are serial)")
    headers = committed_make.headers("integration")
    start = _feed(committed_client, headers, object_type="ci")["next_cursor"]

    elsewhere = _open_transaction_with_an_id(url.set(database="postgres"))
    try:
        made = committed_client.post("/api/v1/cis", headers=headers, json={"name": "seen", "ci_class": "server"})
        assert made.status_code == 201, made.json
        shown = _feed(committed_client, headers, after=start, object_type="ci")["changes"]
        assert [c["object_id"] for c in shown] == [made.json["id"]]
    finally:
        elsewhere.close()

    start = _feed(committed_client, headers, after=start, object_type="ci")["next_cursor"]
    here = _open_transaction_with_an_id(url)
    try:
        made = committed_client.post("/api/v1/cis", headers=headers, json={"name": "held", "ci_class": "server"})
        assert made.status_code == 201, made.json
        assert _feed(committed_client, headers, after=start, object_type="ci")["changes"] == []
    finally:
        here.close()
    shown = _feed(committed_client, headers, after=start, object_type="ci")["changes"]
    assert [c["object_id"] for c in shown] == [made.json["id"]]
