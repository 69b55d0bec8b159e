"""Impact semantics on hand-built estates whose answers are known."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from cairn.db import utcnow
from relations import services
from tests.relations.conftest import states


def test_chain_depths_paths_and_max_depth(estate):
    a, b, c = estate.ci(name="a"), estate.ci(name="b"), estate.ci(name="c")
    estate.depends(a, b)
    estate.depends(b, c)
    result = services.impact([c])
    assert states(result) == {b: ("down", 1), a: ("down", 2)}
    assert {i.ci_id: i.path for i in result.impacted} == {b: [c, b], a: [c, b, a]}
    assert [i.name for i in result.impacted] == ["b", "a"]
    assert result.roots == [c] and result.graph_version > 0
    assert states(services.impact([c], max_depth=1)) == {b: ("down", 1)}
    assert services.impact([a]).impacted == []
    deps = services.dependencies(a)
    assert states(deps) == {b: ("down", 1), c: ("down", 2)}
    assert {i.ci_id: i.path for i in deps.impacted}[c] == [a, b, c]


def test_diamond_counts_each_ci_once_at_its_shortest_depth(estate):
    top, left, right, bottom, deep = (estate.ci() for _ in range(5))
    estate.depends(top, left)
    estate.depends(top, right)
    estate.depends(left, bottom)
    estate.depends(right, bottom)
    estate.depends(deep, top)
    estate.depends(deep, bottom)  # a shortcut: deep is one hop from bottom too
    result = services.impact([bottom])
    assert states(result) == {left: ("down", 1), right: ("down", 1), deep: ("down", 1), top: ("down", 2)}
    path = {i.ci_id: i.path for i in result.impacted}[top]
    assert path in ([bottom, left, top], [bottom, right, top])


def test_cycle_terminates_and_root_is_not_impacted(estate):
    a, b, c, outside = (estate.ci() for _ in range(4))
    estate.depends(a, b)
    estate.depends(b, c)
    estate.depends(c, a)
    estate.depends(outside, b)
    result = services.impact([a])
    assert states(result) == {c: ("down", 1), b: ("down", 2), outside: ("down", 3)}
    assert states(services.dependencies(a)) == {b: ("down", 1), c: ("down", 2)}


@pytest.fixture
def cluster_estate(estate):
    """Three hosts in a cluster; a VM runs on the cluster, an app on the VM, a service uses the app."""

    def build(min_up):
        hosts = [estate.ci("server", name=f"host-{i}") for i in range(3)]
        cluster = estate.cluster(min_up, name="cluster")
        for h in hosts:
            estate.rel(h, "member_of", cluster)
        vm = estate.ci("virtual_machine", name="vm")
        estate.rel(vm, "runs_on", cluster)
        app = estate.ci("application", name="app")
        estate.rel(app, "runs_on", vm)
        service = estate.ci("business_service", name="service")
        estate.rel(service, "uses", app)
        return hosts, cluster, vm, app, service

    return build


def test_cluster_above_min_members_up_is_degraded(cluster_estate):
    hosts, cluster, vm, app, service = cluster_estate(min_up=1)
    result = services.impact([hosts[0]])
    assert states(result) == {
        cluster: ("degraded", 1),
        vm: ("degraded", 2),
        app: ("degraded", 3),
        service: ("degraded", 4),
    }
    assert result.business_services == [service]
    assert {i.ci_id: i.path for i in result.impacted}[service] == [hosts[0], cluster, vm, app, service]
    # Two of three down still leaves one: degraded.
    assert states(services.impact(hosts[:2]))[cluster] == ("degraded", 1)
    # All three down: down, and everything above it.
    result = services.impact(hosts)
    assert {ci: s for ci, (s, _) in states(result).items()} == {
        cluster: "down",
        vm: "down",
        app: "down",
        service: "down",
    }


def test_cluster_at_min_members_up_is_degraded_below_is_down(cluster_estate):
    hosts, cluster, vm, app, service = cluster_estate(min_up=2)
    at_min = services.impact([hosts[0]])  # 2 of 3 up == min_members_up
    assert states(at_min)[cluster] == ("degraded", 1)
    assert states(at_min)[service] == ("degraded", 4)
    below = services.impact(hosts[:2])  # 1 of 3 up < 2
    assert states(below)[cluster] == ("down", 1)
    assert states(below)[service] == ("down", 4)
    path = {i.ci_id: i.path for i in below.impacted}[cluster]
    assert path[0] in hosts[:2] and path[1] == cluster


def test_cluster_needing_all_members_is_down_when_one_fails(cluster_estate):
    hosts, cluster, vm, app, service = cluster_estate(min_up=3)
    result = services.impact([hosts[2]])
    assert states(result)[cluster] == ("down", 1)
    assert states(result)[service] == ("down", 4)


def test_down_wins_over_degraded_and_hard_dependencies_of_a_cluster_count(cluster_estate, estate):
    hosts, cluster, vm, app, service = cluster_estate(min_up=1)
    db = estate.ci("database", name="db")
    estate.rel(app, "uses", db)
    storage = estate.ci("storage", name="san")
    estate.depends(cluster, storage)
    result = services.impact([hosts[0], db])
    assert states(result)[vm] == ("degraded", 2)
    assert states(result)[app] == ("down", 1)  # its database is down; the VM only degraded
    assert states(result)[service] == ("down", 2)
    # The cluster's own storage takes it down whatever its members do.
    assert states(services.impact([storage]))[cluster] == ("down", 1)
    # Dependencies: losing one member is absorbed by the cluster, losing the storage is not.
    deps = states(services.dependencies(vm))
    assert deps[cluster] == ("down", 1)
    assert deps[storage] == ("down", 2)
    assert {deps[h][0] for h in hosts} == {"degraded"}


def test_contains_and_member_of_point_impact_from_source_to_target(estate):
    rack, server = estate.ci("rack"), estate.ci("server")
    estate.rel(rack, "contains", server)
    assert states(services.impact([rack])) == {server: ("down", 1)}
    assert services.impact([server]).impacted == []


def test_as_of_sees_relationships_deleted_after_but_not_before(estate):
    a, b, c = estate.ci(), estate.ci(), estate.ci()
    first = estate.depends(a, c)
    time.sleep(0.01)
    t_both = utcnow()
    time.sleep(0.01)
    estate.unlink(first)
    second = estate.depends(b, c)  # noqa: F841 - still open
    time.sleep(0.01)
    t_after = utcnow()
    # Now: only b depends on c.
    assert set(states(services.impact([c]))) == {b}
    # Between the two: a's link existed, b's not yet.
    assert set(states(services.impact([c], as_of=t_both))) == {a}
    assert set(states(services.impact([c], as_of=t_after))) == {b}
    before_all = utcnow() - timedelta(days=1)
    assert services.impact([c], as_of=before_all).impacted == []
    # Time travel keeps the semantics: depths, paths, clusters.
    result = services.impact([c], as_of=t_both)
    assert result.impacted[0].path == [c, a] and result.impacted[0].depth == 1


def test_as_of_with_a_cluster_matches_the_live_answer(cluster_estate):
    hosts, cluster, vm, app, service = cluster_estate(min_up=2)
    now = utcnow()
    for roots in ([hosts[0]], hosts[:2], [vm]):
        live = services.impact(roots)
        past = services.impact(roots, as_of=now)
        assert states(live) == states(past)
        assert [len(i.path) for i in live.impacted] == [len(i.path) for i in past.impacted]
    assert states(services.dependencies(vm, as_of=now)) == states(services.dependencies(vm))


def test_filters_by_relationship_type_and_ci_class(estate):
    switch = estate.ci("network_switch")
    server = estate.ci("server")
    estate.rel(server, "connected_to", switch)
    vm = estate.ci("virtual_machine")
    estate.rel(vm, "runs_on", server)
    app = estate.ci("application")
    estate.rel(app, "runs_on", vm)
    service = estate.ci("business_service")
    estate.rel(service, "uses", app)
    assert set(states(services.impact([switch]))) == {server, vm, app, service}
    assert set(states(services.impact([switch], relationship_types=["runs_on"]))) == set()
    assert set(states(services.impact([server], relationship_types=["runs_on"]))) == {vm, app}
    only_services = services.impact([switch], ci_classes=["business_service"])
    assert states(only_services) == {service: ("down", 4)}
    assert only_services.impacted[0].path == [switch, server, vm, app, service]


def test_business_services_and_owner_teams(estate, make):
    infra, apps = make.team(), make.team()
    host = estate.ci("server", owner_team_id=infra.id)
    app = estate.ci("application", owner_team_id=apps.id)
    service = estate.ci("business_service")
    estate.rel(app, "hosted_on", host)
    estate.rel(service, "uses", app)
    result = services.impact([host])
    assert result.business_services == [service]
    assert result.owner_team_ids == sorted([infra.id, apps.id])


def test_unknown_cis_and_bad_parameters(estate):
    from cairn.errors import Invalid, NotFound

    a = estate.ci()
    with pytest.raises(NotFound):
        services.impact([987654])
    with pytest.raises(Invalid) as exc:
        services.impact([a], max_depth=0)
    assert "max_depth" in exc.value.errors
    with pytest.raises(Invalid):
        services.impact([a], as_of=utcnow() + timedelta(minutes=5))
    with pytest.raises(Invalid):
        services.impact([a], relationship_types=["nope"])
    with pytest.raises(Invalid):
        services.impact([a], direction="sideways")


def test_enrichers_are_merged_into_the_http_answer(estate, client, admin):
    a, b = estate.ci(), estate.ci()
    estate.depends(a, b)

    def tag(result):
        return {"test_enricher": {"impacted": [i.ci_id for i in result.impacted]}}

    services.register_impact_enricher(tag)
    services.register_impact_enricher(tag)
    try:
        body = client.get(f"/api/v1/cis/{b}/impact", headers=admin).json
        assert body["test_enricher"] == {"impacted": [a]}
        assert services._enrichers.count(tag) == 1
    finally:
        services._enrichers.remove(tag)
