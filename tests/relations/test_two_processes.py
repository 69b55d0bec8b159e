"""Two real server processes on one database: a write through one is seen by the next impact
query through the other (each keeps its own in-process graph)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_servers(app, committed_db, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "CAIRN_INSTANCE_PATH": str(tmp_path),
        "CAIRN_LOG_LEVEL": "WARNING",
        "SECRET_KEY": "test-secret",
        # this test is about the graph; the periodic jobs' writes would only race its setup on SQLite
        "CAIRN_EMBEDDED_RUNNER": "false",
    }
    env.pop("REDIS_URL", None)
    procs, urls = [], []
    for _ in range(2):
        port = _free_port()
        gunicorn = Path(sys.executable).with_name("gunicorn")
        procs.append(
            subprocess.Popen(
                [str(gunicorn), "--workers", "1", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for proc, url in zip(procs, urls, strict=True):
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def _setup(db):
    from cairn.auth.services import create_token, create_user
    from cmdb.services import create_ci
    from relations.services import create_relationship

    user = create_user("two-processes@example.com", "admin", "Two")
    _, token = create_token(user, "test")
    a, b, c = (create_ci({"name": name, "ci_class": "server"}) for name in ("a", "b", "c"))
    create_relationship({"source_id": b.id, "type": "depends_on", "target_id": c.id})
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}, a.id, b.id, c.id


def test_a_write_through_one_process_is_seen_by_the_other(committed_db, two_servers):
    headers, a, b, c = _setup(committed_db)
    first, second = (httpx.Client(base_url=url, headers=headers, timeout=10) for url in two_servers)

    def impacted(client, root):
        body = client.get(f"/api/v1/cis/{root}/impact").json()
        return {i["ci"]["id"]: (i["ci"]["name"], i["depth"]) for i in body["impacted"]}, body["graph_version"]

    # Both processes have built their graph.
    assert impacted(first, c)[0] == {b: ("b", 1)}
    assert impacted(second, c)[0] == {b: ("b", 1)}

    r = first.post("/api/v1/relationships", json={"source_id": a, "type": "depends_on", "target_id": b})
    assert r.status_code == 201
    seen, version_second = impacted(second, c)
    assert seen == {b: ("b", 1), a: ("a", 2)}
    assert impacted(first, c)[1] == version_second

    assert second.delete(f"/api/v1/relationships/{r.json()['id']}").status_code == 204
    assert impacted(first, c)[0] == {b: ("b", 1)}

    assert first.patch(f"/api/v1/cis/{b}", json={"name": "b-renamed"}).status_code == 200
    assert impacted(second, c)[0] == {b: ("b-renamed", 1)}

    # Time travel through the other process sees the removed relationship at its time.
    history = second.get(f"/api/v1/relationships/{r.json()['id']}").json()
    between = history["valid_from"]
    body = first.get(f"/api/v1/cis/{c}/impact", params={"as_of": between}).json()
    assert {i["ci"]["id"] for i in body["impacted"]} == {a, b}
