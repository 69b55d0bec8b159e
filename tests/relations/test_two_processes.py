"""Two real server processes on one database: a write through one is seen by the next impact
query through the other, whether each keeps its own graph or both ask one graph host."""

from __future__ import annotations

import httpx
import pytest

from tests.relations.graph_host import graph_host
from tests.servers import gunicorn_servers


@pytest.fixture(params=["own graphs", "one graph host"])
def two_servers(request, app, committed_db, tmp_path):
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    if request.param == "own graphs":
        with gunicorn_servers(database_url, tmp_path) as urls:
            yield urls
        return
    from relations import graphd

    # both ask one `cairn graphd` (relations.graphd)
    with graph_host(database_url, tmp_path) as (path, _):
        with gunicorn_servers(database_url, tmp_path, CAIRN_GRAPHD_SOCKET=path) as urls:
            yield urls
        answered = graphd.ask(path, "stats")["answered"]
        graphd.close_connections()
    # The servers' live impact questions went to the host (as_of ones are answered by each).
    assert answered.get("_live_answer", 0) >= 6


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
