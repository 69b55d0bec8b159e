"""The per-process graph follows the database: increments, CI changes, rollbacks."""

from __future__ import annotations

import random
import re

from relations import services
from relations.graph import LiveGraph, live_graph
from tests.relations.conftest import states


def _snapshot(graph: LiveGraph):
    G = graph.G
    return (
        {(u, v): dict(d) for u, v, d in G.edges(data=True)},
        {n: dict(d) for n, d in G.nodes(data=True)},
        set(graph.member_targets),
    )


def test_incremental_refresh_equals_a_rebuild(estate, db):
    rng = random.Random(7)
    cis = [estate.ci(rng.choice(["server", "virtual_machine", "application"])) for _ in range(12)]
    clusters = [estate.cluster(2) for _ in range(2)]
    rels = []
    with live_graph():
        pass  # warm it, so everything below is applied as increments
    for step in range(60):
        if rels and rng.random() < 0.3:
            estate.unlink(rels.pop(rng.randrange(len(rels))))
        else:
            a, b = rng.sample(cis, 2)
            if rng.random() < 0.2:
                kind, b = "member_of", rng.choice(clusters)
                if not any(r.source_id == a and r.target_id == b and r.type == kind for r in rels):
                    rels.append(estate.rel(a, kind, b))
            elif not any(r.source_id == a and r.target_id == b and r.type == "depends_on" for r in rels):
                rels.append(estate.depends(a, b))
        if step % 10 == 0:
            with live_graph():
                pass
    with live_graph() as graph:
        incremental = _snapshot(graph)
        assert graph.stats["refreshes"] > 0
    fresh = LiveGraph()
    fresh.rebuild(db.session)
    assert incremental == _snapshot(fresh)
    assert len(incremental[0]) == len({(r.source_id, r.target_id) for r in rels})


def test_ci_changes_reach_the_graph(client, admin, estate):
    host = estate.ci("server", name="old-name")
    vm = estate.ci("virtual_machine", name="vm")
    estate.rel(vm, "runs_on", host)
    assert services.dependencies(vm).impacted[0].name == "old-name"
    r = client.patch(f"/api/v1/cis/{host}", json={"name": "new-name", "criticality": "critical"}, headers=admin)
    assert r.status_code == 200
    item = services.dependencies(vm).impacted[0]
    assert (item.name, item.criticality) == ("new-name", "critical")


def test_min_members_up_change_reaches_the_graph(client, admin, estate):
    cluster = estate.cluster(1)
    hosts = [estate.ci("server") for _ in range(2)]
    for h in hosts:
        estate.rel(h, "member_of", cluster)
    assert states(services.impact([hosts[0]]))[cluster][0] == "degraded"
    r = client.patch(f"/api/v1/cis/{cluster}", json={"attributes": {"min_members_up": 2}}, headers=admin)
    assert r.status_code == 200, r.json
    assert states(services.impact([hosts[0]]))[cluster][0] == "down"


def test_a_rolled_back_write_leaves_the_graph(estate, db):
    a, b = estate.ci(), estate.ci()
    assert services.impact([b]).impacted == []
    savepoint = db.session.begin_nested()
    estate_rel = services.create_relationship({"source_id": a, "type": "depends_on", "target_id": b})
    assert estate_rel.id
    assert [i.ci_id for i in services.impact([b]).impacted] == [a]
    savepoint.rollback()
    assert services.impact([b]).impacted == []
    estate.depends(a, b)
    assert [i.ci_id for i in services.impact([b]).impacted] == [a]


def test_bulk_create_goes_through_the_same_rules(estate, db):
    from cairn.errors import Conflict, Invalid

    a, b, c = estate.ci(), estate.ci(), estate.ci("laptop")
    assert (
        services.bulk_create_relationships(
            [{"source_id": a, "target_id": b, "type": "depends_on"}, {"source_id": b, "target_id": c, "type": "uses"}]
        )
        == 2
    )
    db.session.commit()
    assert states(services.impact([c])) == {b: ("down", 1), a: ("down", 2)}
    for bad, error in (
        ({"source_id": a, "target_id": a, "type": "uses"}, Invalid),
        ({"source_id": c, "target_id": a, "type": "contains"}, Invalid),
        ({"source_id": a, "target_id": 999999, "type": "uses"}, Invalid),
        ({"source_id": a, "target_id": b, "type": "depends_on"}, Conflict),
    ):
        try:
            services.bulk_create_relationships([bad])
        except error:
            db.session.rollback()
        else:
            raise AssertionError(f"{bad} was accepted")
    history = services.search_relationships({"ci_id": a})
    assert len(list(db.session.scalars(history))) == 1


def test_a_refresh_reads_the_change_log_once(estate, db):
    """What the next answer after a write waits for: the change log past the watermark is read in
    the same statement that checks the watermark's own row is still there (a rollback check)."""
    from sqlalchemy import event

    a, b, c = estate.ci(), estate.ci(), estate.ci()
    estate.depends(a, b)
    estate.depends(b, c)
    with live_graph() as graph:
        before = dict(graph.stats)
    estate.depends(a, c)
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    connection = db.session.connection()
    event.listen(connection, "before_cursor_execute", seen)
    try:
        with live_graph() as graph:
            assert graph.G.has_edge(a, c)
            assert graph.stats["rebuilds"] == before["rebuilds"]
            assert graph.stats["refreshes"] == before["refreshes"] + 1
    finally:
        event.remove(connection, "before_cursor_execute", seen)
    assert sum(bool(re.search(r"\bchange_log\b", s)) for s in statements) == 1, statements
