"""Fast cold start: a process restores its graph from the snapshot a rebuild wrote, catches up from
the change log, and falls back to a rebuild whenever the snapshot cannot be trusted."""

from __future__ import annotations

import os
import random
import stat
import threading
from array import array

import pytest

from relations import services, snapshot
from relations.graph import LiveGraph, forget_graphs, graph_stats, live_graph
from tests.relations.conftest import states


@pytest.fixture
def snapshots(app, tmp_path):
    """Snapshots in a directory of this test; a fresh process graph before and after."""
    previous = app.config.get("CAIRN_GRAPH_SNAPSHOT_DIR")
    app.config["CAIRN_GRAPH_SNAPSHOT_DIR"] = str(tmp_path)
    forget_graphs()
    yield tmp_path
    _settle()
    forget_graphs()
    app.config["CAIRN_GRAPH_SNAPSHOT_DIR"] = previous


def _settle() -> None:
    """Let snapshot writers started by the test finish."""
    from relations import graph as graph_module

    for graph in list(graph_module._graphs.values()):
        graph.wait_for_snapshot(30)


def cold_start() -> LiveGraph:
    """What a new process does at its first impact query."""
    forget_graphs()
    with live_graph() as graph:
        return graph


def take_snapshot() -> LiveGraph:
    """A cold start with no snapshot: a rebuild, whose snapshot is written."""
    graph = cold_start()
    graph.wait_for_snapshot(30)
    assert graph.stats["rebuilds"] == 1 and graph.stats["snapshot_writes"] == 1, graph.stats
    assert graph.snapshot_path.exists()
    return graph


def structure(graph: LiveGraph) -> dict:
    return {
        "edges": {(u, v): dict(d) for u, v, d in graph.G.edges(data=True)},
        "passive": {(u, v): dict(d) for u, v, d in graph.passive.edges(data=True)},
        "nodes": {n: dict(d) for n, d in graph.G.nodes(data=True)},
        "member_targets": set(graph.member_targets),
        "inactive": set(graph.inactive),
        "types": dict(graph.types),
    }


def rebuilt(db) -> LiveGraph:
    fresh = LiveGraph()
    fresh.rebuild(db.session)
    return fresh


def _set(db, ci_id, **fields):
    from cmdb.services import get_ci, update_ci

    update_ci(get_ci(ci_id), fields)
    db.session.commit()


def random_estate(estate, make, db, seed=11) -> dict:
    """Servers, VMs, apps, clusters (member_of), racks (contains: the other direction), switches,
    software installed on servers (installed_on: passive), owner teams, then a few CIs retired."""
    rng = random.Random(seed)
    teams = [make.team().id for _ in range(2)]

    def ci(ci_class, **fields):
        team = rng.choice([None, *teams])
        return estate.ci(
            ci_class,
            name=f"{ci_class}-{rng.randrange(10**6)}-ü",
            status="deployed",
            criticality=rng.choice(["low", "medium", "high", "critical"]),
            owner_team_id=team,
            **fields,
        )

    servers = [ci("server") for _ in range(8)]
    vms = [ci("virtual_machine") for _ in range(8)]
    apps = [ci("application") for _ in range(5)]
    software = [ci("software") for _ in range(3)]
    racks = [ci("rack") for _ in range(2)]
    switches = [ci("network_switch") for _ in range(2)]
    clusters = [ci("cluster", attributes={"min_members_up": n}) for n in (1, 2)]
    lonely = ci("server")  # no relationship: not in the graph
    rels = []
    for vm in vms:
        rels.append(estate.rel(vm, "runs_on", rng.choice(servers)))
    for app in apps:
        for vm in rng.sample(vms, 2):
            rels.append(estate.rel(app, "hosted_on", vm))
    for i, server in enumerate(servers):
        rels.append(estate.rel(server, "member_of", clusters[i % 2]))
        rels.append(estate.rel(racks[i % 2], "contains", server))
        rels.append(estate.rel(server, "connected_to", rng.choice(switches)))
    for sw in software:
        for server in rng.sample(servers, 3):
            rels.append(estate.rel(sw, "installed_on", server))
    rels.append(estate.rel(software[0], "installed_on", lonely))  # a CI linked only passively
    for _ in range(6):
        a, b = rng.sample(apps + vms, 2)
        if not any((r.source_id, r.target_id) == (a, b) for r in rels):
            rels.append(estate.depends(a, b))
    retired = [servers[0], vms[1]]
    for r in retired:
        _set(db, r, status="retired")
    return {
        "servers": servers, "vms": vms, "apps": apps, "software": software, "racks": racks,
        "switches": switches, "clusters": clusters, "lonely": lonely, "rels": rels, "retired": retired,
        "teams": teams,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Restore equals rebuild


def test_a_restored_graph_is_the_rebuilt_one(snapshots, estate, make, db):
    e = random_estate(estate, make, db)
    written = take_snapshot()
    restored = cold_start()
    assert restored.stats["restores"] == 1 and restored.stats["rebuilds"] == 0, restored.stats
    assert restored.stats["loaded_from"] == "snapshot" and restored.stats["refreshes"] == 0
    fresh = rebuilt(db)
    assert structure(restored) == structure(fresh) == structure(written)
    assert (restored.version, restored.stamp, restored.watermark, restored.watermark_at) == (
        fresh.version,
        fresh.stamp,
        fresh.watermark,
        fresh.watermark_at,
    )
    # What the estate was built to hold is there: passive ends, clusters, retired CIs, teams.
    assert e["lonely"] in restored.G and e["lonely"] in restored.passive
    assert set(e["clusters"]) <= restored.member_targets
    assert restored.inactive == set(e["retired"])
    assert restored.G.nodes[e["clusters"][1]]["min_up"] == 2
    assert restored.passive.number_of_edges() == 10
    assert any(d["owner_team_id"] for _, d in restored.G.nodes(data=True))
    stats = graph_stats()
    assert stats["restores"] == 1 and stats["snapshot_path"] == str(restored.snapshot_path)


def test_impact_answers_after_a_restore_are_those_after_a_rebuild(snapshots, estate, make, db):
    e = random_estate(estate, make, db, seed=5)
    roots = [*e["servers"], *e["vms"][:3], e["racks"][0], e["switches"][0], e["software"][0]]

    def answers():
        return (
            [services.impact([r]) for r in roots],
            services.impact(e["servers"][:3]),
            [services.dependencies(a) for a in e["apps"]],
        )

    take_snapshot()
    after_rebuild = answers()
    graph = cold_start()
    assert graph.stats["restores"] == 1
    assert answers() == after_rebuild
    assert any(states(r) for r in after_rebuild[0])


def test_writes_after_the_snapshot_are_caught_up(snapshots, estate, make, db):
    from cmdb.assets.services import record_wipe
    from cmdb.services import get_ci, update_ci

    e = random_estate(estate, make, db, seed=3)
    take_snapshot()
    # Relationships added and closed, a CI renamed and re-owned, one retired, one disposed, one
    # back in stock, a cluster's min_members_up changed, a new CI linked, a passive link closed.
    new_app = estate.ci("application", name="late-app")
    estate.rel(new_app, "hosted_on", e["vms"][0])
    estate.rel(e["apps"][0], "depends_on", new_app)
    estate.rel(e["software"][1], "installed_on", estate.ci("laptop", name="late-laptop"))
    for rel in (e["rels"][0], e["rels"][10], next(r for r in e["rels"] if r.type == "installed_on")):
        estate.unlink(rel)
    _set(db, e["vms"][2], name="renamed-vm", criticality="critical", owner_team_id=e["teams"][1])
    _set(db, e["servers"][3], status="retired")
    _set(db, e["retired"][1], status="in_stock")
    disposed = get_ci(e["servers"][4])
    update_ci(disposed, {"status": "retired"})
    record_wipe(disposed, {"method": "crypto_erase", "performed_by": "IT"})
    update_ci(disposed, {"status": "disposed"})
    db.session.commit()
    _set(db, e["clusters"][0], attributes={"min_members_up": 3})

    graph = cold_start()
    assert graph.stats["restores"] == 1 and graph.stats["rebuilds"] == 0, graph.stats
    assert graph.stats["refreshes"] == 1  # the catch-up
    fresh = rebuilt(db)
    assert structure(graph) == structure(fresh)
    assert (graph.version, graph.stamp) == (fresh.version, fresh.stamp)
    assert graph.G.nodes[e["vms"][2]]["name"] == "renamed-vm"
    assert graph.G.nodes[e["clusters"][0]]["min_up"] == 3
    assert {e["servers"][3], e["servers"][4]} <= graph.inactive and e["retired"][1] not in graph.inactive
    assert new_app in graph.G
    # And it keeps following the database afterwards.
    estate.depends(new_app, e["servers"][6])
    with live_graph() as graph:
        assert structure(graph) == structure(rebuilt(db))


def test_an_increment_waits_for_the_writer_copying_the_graph(snapshots, estate, make, db, monkeypatch):
    from relations.graph import LiveGraph as Graph

    e = random_estate(estate, make, db, seed=6)
    events, release = [], threading.Event()
    real_capture, real_apply = snapshot.capture, Graph._apply_unguarded

    def slow_capture(*args, **kwargs):
        events.append("copy started")
        release.wait(10)
        kept = real_capture(*args, **kwargs)
        events.append("copy done")
        return kept

    def apply(self, *args):
        events.append("apply")
        return real_apply(self, *args)

    monkeypatch.setattr(snapshot, "capture", slow_capture)
    monkeypatch.setattr(Graph, "_apply_unguarded", apply)
    graph = cold_start()  # rebuilt; its writer is copying (held up)
    estate.depends(e["apps"][0], e["servers"][7])
    timer = threading.Timer(0.3, release.set)
    timer.start()
    with live_graph() as same:  # the increment waits for the copy
        assert same is graph and same.G.has_edge(e["apps"][0], e["servers"][7])
    timer.join()
    graph.wait_for_snapshot(30)
    assert events == ["copy started", "copy done", "apply"]
    monkeypatch.undo()
    restored = cold_start()  # the snapshot is the rebuild's graph: caught up, it is today's
    assert restored.stats["restores"] == 1 and restored.stats["refreshes"] == 1
    assert structure(restored) == structure(rebuilt(db))


def test_too_many_changes_since_the_snapshot_mean_a_rebuild(snapshots, estate, make, db, monkeypatch):
    from relations import graph as graph_module

    e = random_estate(estate, make, db, seed=4)
    take_snapshot()
    for app in e["apps"]:
        estate.depends(app, e["servers"][7])
    monkeypatch.setattr(graph_module, "MAX_INCREMENT_ROWS", 2)
    graph = cold_start()
    assert graph.stats["restores"] == 1 and graph.stats["rebuilds"] == 1
    assert graph.stats["loaded_from"] == "tables"
    assert structure(graph) == structure(rebuilt(db))


def test_an_empty_graph_round_trips(snapshots, db):
    take_snapshot()
    graph = cold_start()
    assert graph.stats["restores"] == 1
    assert structure(graph) == structure(rebuilt(db))


# ---------------------------------------------------------------------------------------------
# Snapshots that must not be used


def _tamper(path, how, monkeypatch):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "corrupted":
        middle = len(data) - 40
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1 :])
    elif how == "garbage":
        path.write_bytes(os.urandom(4096))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "foreign":  # a good snapshot, of another database
        snap = snapshot.decode(data)
        snap.database = "0123456789abcdef"
        snapshot.write(path, snap)
    elif how == "format_version":
        snap = snapshot.decode(data)
        with monkeypatch.context() as m:
            m.setattr(snapshot, "FORMAT_VERSION", snapshot.FORMAT_VERSION + 1)
            snapshot.write(path, snap)
    elif how == "inconsistent":  # well-formed, checksum and all, but an edge points nowhere
        snap = snapshot.decode(data)
        targets = array("q", snap.blocks["g.targets"])
        targets[0] = 10**9
        snap.blocks["g.targets"] = targets
        snapshot.write(path, snap)
    elif how == "directory":
        path.unlink()
        path.mkdir()
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["truncated", "corrupted", "garbage", "empty", "foreign", "format_version", "inconsistent", "directory"]
)
def test_a_bad_snapshot_is_ignored_and_the_graph_rebuilt(snapshots, estate, make, db, monkeypatch, caplog, how):
    random_estate(estate, make, db, seed=8)
    path = take_snapshot().snapshot_path
    _tamper(path, how, monkeypatch)
    graph = cold_start()
    assert graph.stats["restores"] == 0 and graph.stats["rebuilds"] == 1, graph.stats
    assert graph.stats["restore_fallbacks"] == 1
    assert structure(graph) == structure(rebuilt(db))
    assert "not used, rebuilding from the tables" in caplog.text
    graph.wait_for_snapshot(30)
    if how != "directory":  # the rebuild wrote a good one again
        assert cold_start().stats["restores"] == 1


def test_a_snapshot_of_a_rolled_back_transaction_is_not_restored(snapshots, estate, make, db):
    e = random_estate(estate, make, db, seed=9)
    savepoint = db.session.begin_nested()
    services.create_relationship({"source_id": e["apps"][0], "type": "depends_on", "target_id": e["servers"][7]})
    db.session.flush()
    take_snapshot()  # it holds the relationship about to be rolled back
    savepoint.rollback()
    graph = cold_start()
    assert graph.stats["restores"] == 0 and graph.stats["restore_fallbacks"] == 1
    assert structure(graph) == structure(rebuilt(db))
    assert not graph.G.has_edge(e["apps"][0], e["servers"][7])


def test_a_rolled_back_version_reused_by_another_write_is_not_restored(snapshots, estate, make, db):
    e = random_estate(estate, make, db, seed=10)
    savepoint = db.session.begin_nested()
    services.create_relationship({"source_id": e["apps"][0], "type": "depends_on", "target_id": e["servers"][7]})
    db.session.flush()
    written = take_snapshot()
    savepoint.rollback()
    estate.depends(e["apps"][1], e["servers"][6])  # the same graph version again, another stamp
    graph = cold_start()
    assert graph.version == written.version
    assert graph.stats["restores"] == 0 and graph.stats["restore_fallbacks"] == 1
    assert structure(graph) == structure(rebuilt(db))
    assert not graph.G.has_edge(e["apps"][0], e["servers"][7])
    assert graph.G.has_edge(e["apps"][1], e["servers"][6])


def test_changed_relationship_types_mean_a_rebuild(snapshots, estate, make, db):
    from sqlalchemy import update

    from relations.models import RelationshipType

    random_estate(estate, make, db, seed=12)
    take_snapshot()
    db.session.execute(update(RelationshipType).where(RelationshipType.name == "uses").values(impact="none"))
    db.session.commit()
    graph = cold_start()
    assert graph.stats["restores"] == 0 and graph.stats["restore_fallbacks"] == 1
    assert structure(graph) == structure(rebuilt(db))


@pytest.mark.parametrize("what", ["migration", "code"])
def test_a_snapshot_from_before_a_migration_or_a_release_is_not_restored(
    snapshots, estate, make, db, monkeypatch, what
):
    from sqlalchemy import text

    from relations import graph as graph_module

    random_estate(estate, make, db, seed=16)
    take_snapshot()
    if what == "migration":
        db.session.execute(text("UPDATE alembic_version SET version_num = version_num || '_next'"))
        db.session.commit()
    else:
        monkeypatch.setattr(graph_module, "_fingerprint", "another-release")
    graph = cold_start()
    assert graph.stats["restores"] == 0 and graph.stats["restore_fallbacks"] == 1
    assert structure(graph) == structure(rebuilt(db))


def test_snapshots_can_be_turned_off(app, snapshots, estate, make, db):
    random_estate(estate, make, db, seed=13)
    app.config["CAIRN_GRAPH_SNAPSHOT_DIR"] = "off"
    graph = cold_start()
    assert graph.snapshot_path is None and graph.stats["snapshot_writes"] == 0
    assert not list(snapshots.iterdir())


# ---------------------------------------------------------------------------------------------
# The file


def test_the_file_is_private_and_written_atomically(snapshots, estate, make, db):
    random_estate(estate, make, db, seed=14)
    graph = take_snapshot()
    path = graph.snapshot_path
    assert path.parent == snapshots and path.name.startswith("graph-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in snapshots.iterdir()] == [path.name]  # no temporary file left
    # Writers replacing the file while readers read it: a reader sees a whole file, every time.
    snap = snapshot.read(path, graph.database_key)
    errors, stop = [], threading.Event()

    def writer():
        while not stop.is_set():
            snapshot.write(path, snap)

    def reader():
        for _ in range(200):
            try:
                assert snapshot.read(path, graph.database_key).edges == snap.edges
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        reader()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert [p.name for p in snapshots.iterdir()] == [path.name]


def test_the_key_is_the_database_url_without_its_password():
    one = snapshot.database_key("postgresql+psycopg://cairn:secret@db.example/cairn")
    assert one == snapshot.database_key("postgresql+psycopg://cairn:other@db.example/cairn")
    assert one != snapshot.database_key("postgresql+psycopg://cairn:secret@db.example/cairn2")
    assert "secret" not in str(snapshot.path_for("/x", one))


def _tags(**overrides) -> dict:
    return {
        "database": "k", "version": 1, "stamp": 2, "watermark": 0, "watermark_at": None, "types": [],
        "schema": "", "code": "", **overrides,
    }  # fmt: skip


def _round_trip(G, P, member_targets, type_names=("depends_on",)):
    snap = snapshot.capture(G, P, member_targets, list(type_names), **_tags()).finish()
    return snapshot.decode(snapshot.encode(snap), "k").graph()


def test_unusual_graphs_round_trip_exactly():
    import networkx as nx

    from relations.graph import edge_data

    def link(g, u, v, *types):
        g.add_edge(u, v)
        g._succ[u][v] = g._pred[v][u] = edge_data(types)

    G, P = nx.DiGraph(), nx.DiGraph()
    link(G, 1, 2, "depends_on", "runs_on")  # two relationships, one pair
    link(G, 3, 1, "member_of")
    link(G, 2, 3, "a-type-no-longer-listed")
    G.add_node(4)  # an end of a passive relationship only
    link(P, 5, 4, "installed_on")
    G.add_node(5)
    G._node[1].update(name="ü\n", ci_class="server", criticality="high", owner_team_id=None)
    G._node[2].update(name="", ci_class="cluster", criticality="low", owner_team_id=7, min_up=3, status="retired")
    G._node[3].update(name="x", ci_class="vm", criticality="low", owner_team_id=2**40)
    G._node[5].update(name="only-a-name")  # node 4: no data at all (its CI row was missing)
    G2, P2, members = _round_trip(G, P, {3})
    for a, b in ((G, G2), (P, P2)):
        for attr in ("_succ", "_pred", "_node"):
            assert getattr(a, attr) == getattr(b, attr)
            assert list(getattr(a, attr)) == list(getattr(b, attr))  # the nodes in the same order too
        # and each node's successors (predecessors are derived: their order may differ)
        assert [list(d) for d in a._succ.values()] == [list(d) for d in b._succ.values()]
        assert all(b._succ[u][v] is b._pred[v][u] for u, v in b.edges)  # one data dict per edge
        assert all(b._succ[u][v] is a._succ[u][v] for u, v in b.edges)  # the shared dict of its types
    assert members == {3}
    empty = _round_trip(nx.DiGraph(), nx.DiGraph(), set())
    assert (empty[0].number_of_nodes(), empty[1].number_of_nodes(), empty[2]) == (0, 0, set())


def test_a_ci_is_one_object_and_an_edge_type_set_one_dict_built_or_restored():
    """What keeps a million-CI graph small: rows bring a new int for every mention of a CI, the graph
    keeps one; edges of the same types share one data dict."""
    from relations.graph import TypeInfo, _fill

    types = {
        "depends_on": TypeInfo("depends_on", "depends on", "used by", "source_depends_on_target", (), ()),
        "runs_on": TypeInfo("runs_on", "runs on", "runs", "source_depends_on_target", (), ()),
    }
    big = 10**9

    def fresh(n):  # a new int object each call, as a database driver gives
        return int(str(big + n))

    rows = [(k, fresh(k % 7), fresh(k % 7 + 1 + k % 3), "depends_on" if k % 5 else "runs_on") for k in range(60)]
    rows.append((60, fresh(20), fresh(21), "runs_on"))
    by_pair = {}
    for _, u, v, type_name in rows:
        by_pair.setdefault((u, v), set()).add(type_name)
    expected_sets = {frozenset(names) for names in by_pair.values()}
    assert len(expected_sets) == 3
    G, P, _ = _fill(rows, types)
    _, P2, _ = _fill([], types)
    for graph in (G, _round_trip(G, P2, set(), type_names=list(types))[0]):
        keys = {n: n for n in graph._node}
        mentions = [(u, v) for u in graph._succ for v in graph._succ[u]] + [
            (v, u) for u in graph._pred for v in graph._pred[u]
        ]
        assert mentions and all(keys[u] is u and keys[v] is v for u, v in mentions)
        datas = {id(d): d for u in graph._succ for d in graph._succ[u].values()}
        assert len(datas) == len(expected_sets) and {frozenset(d) for d in datas.values()} == expected_sets


def test_what_the_format_cannot_hold_means_no_snapshot():
    import networkx as nx

    def graph(**data):
        from relations.graph import edge_data

        G = nx.DiGraph()
        G.add_edge(1, 2)
        G._succ[1][2] = G._pred[2][1] = edge_data(["depends_on"])
        G._node[1].update({"name": "a", "ci_class": "server", "criticality": "low", "owner_team_id": None, **data})
        return G

    with pytest.raises(snapshot.SnapshotError):  # PostgreSQL cannot store it, SQLite can
        snapshot.encode(snapshot.capture(graph(name="a\x00b"), nx.DiGraph(), set(), [], **_tags()).finish())
    with pytest.raises(snapshot.SnapshotError):
        snapshot.capture(graph(min_up=2**70), nx.DiGraph(), set(), [], **_tags()).finish()
    with pytest.raises(snapshot.SnapshotError):
        snapshot.capture(graph(colour="red"), nx.DiGraph(), set(), [], **_tags()).finish()


# ---------------------------------------------------------------------------------------------
# The command


def test_cairn_graph_snapshot_writes_the_file(app, snapshots, estate, make, db):
    e = random_estate(estate, make, db, seed=15)
    result = app.test_cli_runner().invoke(args=["graph", "snapshot"])
    assert result.exit_code == 0, result.output
    files = list(snapshots.glob("graph-*.snapshot"))
    assert len(files) == 1 and str(files[0]) in result.output
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    written = snapshot.read(files[0])
    assert written.edges == len([r for r in e["rels"]])
    graph = cold_start()
    assert graph.stats["restores"] == 1 and graph.stats["rebuilds"] == 0
    assert structure(graph) == structure(rebuilt(db))
    app.config["CAIRN_GRAPH_SNAPSHOT_DIR"] = "off"
    result = app.test_cli_runner().invoke(args=["graph", "snapshot"])
    assert result.exit_code == 1 and "off" in result.output


def test_the_hourly_job_rewrites_a_snapshot_only_when_it_fell_behind(app, snapshots, estate, make, db):
    from relations.tasks import refresh_graph_snapshot

    random_estate(estate, make, db, seed=16)
    a, b, c, d = (estate.ci("server", name=f"behind-{n}") for n in range(4))
    assert refresh_graph_snapshot(max_behind=3) == "written"  # none yet
    path = next(snapshots.glob("graph-*.snapshot"))
    first = snapshot.header_of(path.read_bytes())
    assert refresh_graph_snapshot(max_behind=3) == "fresh"
    estate.rel(a, "depends_on", b)
    estate.rel(b, "depends_on", c)
    estate.rel(a, "depends_on", c)
    assert refresh_graph_snapshot(max_behind=3) == "fresh"  # 3 rows behind: a restore catches up
    estate.rel(c, "depends_on", d)
    assert refresh_graph_snapshot(max_behind=3) == "written"
    second = snapshot.header_of(path.read_bytes())
    assert second["watermark"] > first["watermark"] and second["version"] > first["version"]
    graph = cold_start()
    assert graph.stats["restores"] == 1 and graph.stats["rebuilds"] == 0
    assert structure(graph) == structure(rebuilt(db))
    assert graph.G.has_edge(c, d)
    path.write_bytes(b"not a snapshot")
    assert refresh_graph_snapshot(max_behind=3) == "written"
    assert snapshot.read(path).edges == graph.G.number_of_edges() + graph.passive.number_of_edges()
    app.config["CAIRN_GRAPH_SNAPSHOT_DIR"] = "off"
    assert refresh_graph_snapshot() == "off"
