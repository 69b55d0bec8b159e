"""Event correlation with a graph host: a job worker configured with `CAIRN_GRAPHD_SOCKET` asks the
host its walks (one graph per host) and reaches the same incidents as a process walking its own."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.integrations.events.conftest import build_estate
from tests.relations.graph_host import graph_host
from tickets.models import Ticket


def _storm(client, headers, hosts, run: str) -> None:
    events = [
        {
            "source": "nagios",
            "fingerprint": f"{run}-{h.name}",
            "status": "firing",
            "summary": "down",
            "ci": {"id": h.id},
        }
        for h in hosts
    ]
    response = client.post("/api/v1/events", json=events, headers=headers)
    assert response.status_code == 202, response.get_json()


def _incidents(db) -> list[Ticket]:
    db.session.expire_all()
    return list(db.session.scalars(select(Ticket).where(Ticket.kind == "incident").order_by(Ticket.id)))


def test_correlation_asks_the_graph_host_and_keeps_no_graph(
    app, committed_client, committed_make, committed_db, asking, tmp_path
):
    from relations import graph as graph_module
    from relations import graphd
    from relations.services import bounded_walks

    switch, hosts, business = build_estate(committed_make, 8)
    sender = committed_make.user("integration")
    headers = {"Authorization": f"Bearer {committed_make.token(sender, scopes=['events:write'])}"}

    asking("")
    here_up = bounded_walks([h.id for h in hosts] + [business.id], hops=3, direction="dependencies")
    here_down = bounded_walks([switch.id], hops=3, direction="impact")
    assert switch.id in here_up[hosts[0].id] and business.id in here_down[switch.id]

    with graph_host(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path) as (path, _proc):
        asking(path)
        asked = graphd.counters["asked"]
        assert bounded_walks([h.id for h in hosts] + [business.id], hops=3, direction="dependencies") == here_up
        assert bounded_walks([switch.id], hops=3, direction="impact") == here_down
        assert graphd.counters["asked"] == asked + 2

        # A storm behind the switch, correlated by this process (jobs inline) through the host.
        asked = graphd.counters["asked"]
        _storm(committed_client, headers, hosts[:5], "one")
        incidents = _incidents(committed_db)
        assert [i.ci_ids for i in incidents] == [[switch.id]], "the silent switch explains the hosts"
        assert graphd.counters["asked"] > asked, "the walks were asked of the host"
        assert graph_module._graphs == {}, "this process built no graph of its own"
        stats = graphd.ask(path, "stats")
        assert stats["answered"]["_bounded_walks"] >= 3

        # Unknown CIs walk to themselves alone; a bad direction is refused before anything is asked.
        assert bounded_walks([987654321], hops=2, direction="impact") == {987654321: {987654321: 0}}
        from cairn.errors import Invalid

        with pytest.raises(Invalid):
            bounded_walks([switch.id], hops=2, direction="sideways")
