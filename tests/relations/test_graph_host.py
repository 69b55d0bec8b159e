"""One graph per host: a real `cairn graphd` answers the graph questions of the processes that ask
it, the same answers they would compute themselves, fresh after every write, and a process whose
host is gone answers from its own graph instead of failing."""

from __future__ import annotations

import os
import pickle
import socket
import stat
import struct

import pytest
from hypothesis import HealthCheck, given, settings

from tests.relations.graph_host import graph_host
from tests.relations.test_property import MEMBER, fixpoint_states, random_graphs


@pytest.fixture(scope="module")
def _module_host(app, tmp_path_factory):
    """One host for the module's tests (starting one is a second or two of imports); each test's
    truncation moves the database's graph version back, and the host rebuilds, as it would."""
    with graph_host(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path_factory.mktemp("graph-host")) as running:
        yield running


@pytest.fixture
def host(_module_host, committed_db):
    yield _module_host
    from relations import graphd

    graphd.close_connections()


def _build(committed_make):
    """A small estate with what the graph code must get right: redundancy (a cluster of two that
    needs one up), a cycle, a business service, an impact-less relationship and a retired CI."""
    from cairn.db import db
    from relations.services import create_relationship

    def ci(cls, name, **fields):
        return committed_make.ci(cls, name=name, **fields).id

    ids = {
        "switch": ci("network_switch", "core-switch"),
        "h1": ci("server", "hv-1"),
        "h2": ci("server", "hv-2"),
        "cluster": ci("cluster", "hv-cluster", attributes={"min_members_up": 1}),
        "vm": ci("virtual_machine", "vm-app"),
        "db": ci("database", "db-main"),
        "app": ci("application", "shop-app"),
        "svc": ci("business_service", "Shop"),
        "loop_a": ci("application", "loop-a"),
        "loop_b": ci("application", "loop-b"),
        "sw": ci("software", "nginx"),
        "old": ci("server", "retired-box", status="retired"),
    }
    links = [
        ("h1", "depends_on", "switch"),
        ("h2", "depends_on", "switch"),
        ("h1", "member_of", "cluster"),
        ("h2", "member_of", "cluster"),
        ("vm", "runs_on", "cluster"),
        ("db", "runs_on", "h1"),
        ("app", "depends_on", "vm"),
        ("app", "depends_on", "db"),
        ("svc", "depends_on", "app"),
        ("loop_a", "depends_on", "loop_b"),
        ("loop_b", "depends_on", "loop_a"),
        ("loop_a", "depends_on", "db"),
        ("sw", "installed_on", "vm"),
        ("old", "depends_on", "switch"),
    ]
    for source, kind, target in links:
        create_relationship({"source_id": ids[source], "type": kind, "target_id": ids[target]})
    db.session.commit()
    return ids


def _everything(ids: dict[str, int]) -> dict:
    """Every graph question of relations.services, over the whole estate, as plain values."""
    from cairn.db import db
    from cmdb.models import ConfigurationItem
    from relations import services

    def result(r):
        return (r.roots, [(i.ci_id, i.name, i.state, i.depth, i.path, i.parent) for i in r.impacted],
                r.business_services, r.owner_team_ids, r.extras)  # fmt: skip

    out: dict = {}
    for name, ci_id in ids.items():
        out[f"impact {name}"] = result(services.impact([ci_id], include_inactive=True))
        out[f"dependencies {name}"] = result(services.dependencies(ci_id))
        out[f"impact {name} depth 1"] = result(services.impact([ci_id], max_depth=1, ci_classes=["application"]))
        ci = db.session.get(ConfigurationItem, ci_id)
        out[f"neighbourhood {name}"] = services.neighbourhood(ci, depth=2)
    out["impact switch+db"] = result(services.impact([ids["switch"], ids["db"]]))
    out["paths"] = [
        services.shortest_path(ids["svc"], ids["switch"]),
        services.shortest_path(ids["sw"], ids["vm"], directed=False),
    ]
    out["spof"] = services.single_points_of_failure(ids["svc"])
    out["cycles"] = services.cycles()
    out["clusters"] = services.cluster_health([ids["cluster"], ids["vm"]])
    return out


def test_the_host_answers_every_question_as_this_process_would(committed_make, host, asking):
    from relations import graph as graph_module
    from relations import graphd

    ids = _build(committed_make)
    asking("")
    here = _everything(ids)
    assert here["impact switch"][1], "the estate has an impact to compare"

    path, _ = host
    asking(path)
    asked_before = graphd.counters["asked"]
    there = _everything(ids)
    assert there == here
    assert graphd.counters["asked"] - asked_before == 4 * len(ids) + 6  # every question went to the host
    # This process kept no graph of its own: the host holds the only one.
    assert graph_module._graphs == {}
    stats = graphd.ask(path, "stats")
    assert stats["pid"] != os.getpid()
    assert stats["answered"]["_live_answer"] >= 3 * len(ids)
    assert stats["graph"]["nodes"] >= len(ids)


def test_a_write_is_in_the_hosts_next_answer(committed_make, host, asking):
    from cairn.db import db
    from relations import services

    ids = _build(committed_make)
    asking(host[0])
    before = {i.ci_id for i in services.impact([ids["db"]]).impacted}
    assert ids["loop_a"] in before
    extra = committed_make.ci("application", name="late-app").id
    rel = services.create_relationship({"source_id": extra, "type": "depends_on", "target_id": ids["db"]})
    db.session.commit()
    after = services.impact([ids["db"]])
    assert {i.ci_id for i in after.impacted} == before | {extra}
    # Paging and the summary reuse the answer this process got, at the version it read.
    summary = services.impact_answer([ids["db"]], single_root=True, summary=True)
    assert summary["count"] == len(before) + 1 and "by_depth" in summary["summary"]
    page = services.impact_answer([ids["db"]], single_root=True, page=1, page_size=2)
    assert page["count"] == len(before) + 1 and len(page["impacted"]) == 2

    services.delete_relationship(rel)
    db.session.commit()
    assert {i.ci_id for i in services.impact([ids["db"]]).impacted} == before


def test_errors_raised_on_the_host_are_raised_here(committed_make, host, asking):
    from cairn.errors import Invalid, NotFound
    from relations import services

    ids = _build(committed_make)
    asking(host[0])
    with pytest.raises(NotFound, match="No CI with id 999999"):
        services.impact([999999])
    with pytest.raises(Invalid) as caught:
        services.impact([ids["db"], 999999], _field="ci_ids")
    assert caught.value.errors == {"ci_ids": ["No CI with id 999999."]}
    with pytest.raises(NotFound):
        services.shortest_path(ids["svc"], ids["loop_b"])


def test_without_its_host_a_process_answers_from_its_own_graph(app, committed_make, tmp_path, asking):
    from relations import graph as graph_module
    from relations import graphd, services

    ids = _build(committed_make)
    app.config["CAIRN_GRAPHD_WAIT_SECONDS"] = 0.2
    try:
        with graph_host(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path) as (path, proc):
            asking(path)
            expected = [i.ci_id for i in services.impact([ids["switch"]]).impacted]
            assert graph_module._graphs == {}
        # The host is gone (its socket too): the same question is answered here, not failed.
        graphd.counters["answered_here"] = 0
        from relations import answers

        answers.forget()
        assert [i.ci_id for i in services.impact([ids["switch"]]).impacted] == expected
        assert graphd.counters["answered_here"] == 1
        assert graph_module._graphs != {}
        # A new host on the same path is asked again.
        with graph_host(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path) as (path, proc):
            asking(path)
            asked = graphd.counters["asked"]
            assert services.cycles()["count"] == 1
            assert graphd.counters["asked"] == asked + 1
    finally:
        app.config.pop("CAIRN_GRAPHD_WAIT_SECONDS", None)
        graphd.close_connections()


@pytest.mark.postgres_only
def test_a_process_asking_a_host_that_is_still_loading_waits_for_it(
    app, committed_db, committed_make, tmp_path, asking
):
    """A restarted host listens before it loads its graph: a process asking meanwhile waits for
    the answer instead of loading a graph of its own (at a million CIs, a gigabyte per process).
    The host's load is held here by a lock on the graph version row, which its rebuild takes to
    wait for writers in flight."""
    import threading
    import time

    from sqlalchemy import text

    from relations import graph as graph_module
    from relations import graphd, services

    ids = _build(committed_make)
    asking("")
    expected = [(i.ci_id, i.state) for i in services.impact([ids["switch"]]).impacted]
    assert expected
    committed_db.session.rollback()  # this process's own rebuild read the version row FOR SHARE
    blocker = committed_db.engine.connect()
    held = blocker.begin()
    blocker.execute(text("SET LOCAL lock_timeout = '30s'"))
    blocker.execute(text("SELECT version FROM graph_state WHERE id = 1 FOR UPDATE"))
    answers, asked_before = [], graphd.counters.copy()

    def ask() -> None:
        with app.app_context():
            try:
                answers.append([(i.ci_id, i.state) for i in services.impact([ids["switch"]]).impacted])
            finally:
                committed_db.session.remove()

    asker = threading.Thread(target=ask, daemon=True)
    try:
        database_url = app.config["SQLALCHEMY_DATABASE_URI"]
        with graph_host(database_url, tmp_path, loaded=False, CAIRN_GRAPH_SNAPSHOT_DIR="off") as (path, _):
            # It listens (graph_host returned) and its load waits on our lock.
            deadline = time.monotonic() + 60
            while not _waiting_on_a_lock(committed_db.engine) and time.monotonic() < deadline:
                time.sleep(0.05)
            waiting = _waiting_on_a_lock(committed_db.engine)
            assert waiting, "the host's load never waited on the lock"
            asking(path)
            asker.start()
            asker.join(2)
            assert asker.is_alive() and not answers, "the question waits for the host's graph"
            held.rollback()
            asker.join(60)
            assert answers == [expected]
            # The host answered it, and this process loaded no graph of its own.
            assert graphd.counters["asked"] == asked_before["asked"] + 1
            assert graphd.counters["answered_here"] == asked_before["answered_here"]
            assert graph_module._graphs == {}
            assert graphd.ask(path, "stats")["graph"]["loaded_from"] == "tables"
    finally:
        if held.is_active:
            held.rollback()
        blocker.close()
        if asker.ident is not None:
            asker.join(60)


def _waiting_on_a_lock(engine) -> int:
    from sqlalchemy import text

    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    with engine.connect() as conn:
        return conn.execute(text(query)).scalar()


def test_the_socket_is_private_and_refuses_what_is_not_a_question(committed_db, host):
    path, proc = host
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    header = struct.Struct(">I")

    def exchange(payload: bytes):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(path)
            conn.sendall(header.pack(len(payload)) + payload)
            size = header.unpack(conn.recv(4, socket.MSG_WAITALL))[0]
            return pickle.loads(conn.recv(size, socket.MSG_WAITALL))

    for payload in (b"\x80\x04not json", b'["os.system", ["true"], {}]', b'{"a": 1}', b'["_cycles", 1, 2]'):
        status, kind, detail, _ = exchange(payload)
        assert (status, kind) == ("error", "invalid")
        assert "Not a question" in detail
    # An oversized announcement closes that connection only; the host goes on answering.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(header.pack(2**31))
        conn.settimeout(10)
        assert conn.recv(1) == b""
    assert exchange(b'["_cycles", [], {}]')[0] == "ok"
    assert proc.poll() is None


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=random_graphs(max_nodes=8))
def test_on_random_graphs_the_host_agrees_with_the_fixpoint(committed_make, host, asking, case):
    from cairn.db import db
    from relations import services

    asking(host[0])
    n, edges, cluster_min, roots = case
    ids = [
        committed_make.ci("cluster", attributes={"min_members_up": cluster_min[i]}).id
        if i in cluster_min
        else committed_make.ci("server").id
        for i in range(n)
    ]
    for u, v, kind in edges:  # u depends on v; member_of runs member -> cluster
        source, target = (ids[v], ids[u]) if kind == MEMBER else (ids[u], ids[v])
        services.create_relationship({"source_id": source, "type": kind, "target_id": target})
    db.session.commit()
    expected = {ids[k]: s for k, s in fixpoint_states(n, edges, cluster_min, roots).items()}
    live = services.impact([ids[r] for r in roots])
    assert {i.ci_id: i.state for i in live.impacted} == expected


def test_the_snapshot_job_has_the_host_write_the_graph_it_holds(committed_make, host, asking):
    """The hourly snapshot job, asked by a job worker with a graph host: the host writes its own
    graph's snapshot; the worker builds no graph for it (at a million CIs that would be gigabytes)."""
    from cairn.uow import checkpoint
    from relations import graph as graph_module
    from relations import graphd, snapshot
    from relations.graph import build_snapshot
    from relations.tasks import write_graph_snapshot

    _build(committed_make)
    asking("")
    _, kept = build_snapshot()
    checkpoint()
    expected = kept.finish()

    path, _ = host
    asking(path)
    written = write_graph_snapshot()
    assert graph_module._graphs == {}, "the asking process built no graph"
    assert graphd.ask(path, "stats")["answered"]["write_hosted_snapshot"] >= 1
    snap = snapshot.read(written.path)
    assert (written.nodes, written.edges, written.version) == (snap.nodes, snap.edges, snap.version)
    assert (snap.nodes, snap.edges, snap.version) == (expected.nodes, expected.edges, expected.version)
