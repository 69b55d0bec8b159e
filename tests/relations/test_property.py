"""Property: on random graphs the service agrees with a plain, independent computation."""

from __future__ import annotations

from collections import deque

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relations.graph import LiveGraph, edge_data
from relations.impact import propagate

MEMBER = "member_of"


@st.composite
def random_graphs(draw, max_nodes=14, clusters=True):
    n = draw(st.integers(2, max_nodes))
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] != p[1])
    edges = draw(st.lists(pairs, max_size=3 * n, unique=True))
    cluster_min = {}
    if clusters:
        for c in draw(st.sets(st.integers(0, n - 1), max_size=3)):
            cluster_min[c] = draw(st.integers(1, 4))
    typed = []
    for u, v in edges:  # u depends on v
        kind = MEMBER if u in cluster_min and draw(st.booleans()) else "depends_on"
        typed.append((u, v, kind))
    roots = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True))
    return n, typed, cluster_min, roots


def hop_distances(n, arcs, starts):
    """Plain BFS: hop counts from the nearest of ``starts`` over ``arcs`` (pairs), the starts at 0."""
    out = {i: [] for i in range(n)}
    for u, v in arcs:
        out[u].append(v)
    dist = dict.fromkeys(starts, 0)
    queue = deque(starts)
    while queue:
        x = queue.popleft()
        for y in out[x]:
            if y not in dist:
                dist[y] = dist[x] + 1
                queue.append(y)
    return dist


def bfs_depths(n, edges, roots):
    """Plain BFS over dependents: hop distance from the nearest root."""
    depth = hop_distances(n, [(v, u) for u, v, _ in edges], roots)
    return {k: d for k, d in depth.items() if k not in roots}


def fixpoint_states(n, edges, cluster_min, roots):
    """Independent: iterate the rules until nothing changes."""
    deps = {i: [] for i in range(n)}
    for u, v, kind in edges:
        deps[u].append((v, kind))
    down = set(roots)
    changed = True
    while changed:
        changed = False
        for x in range(n):
            if x in down:
                continue
            members = [v for v, k in deps[x] if k == MEMBER]
            hard = [v for v, k in deps[x] if k != MEMBER]
            lost = sum(1 for m in members if m in down)
            if any(v in down for v in hard) or (lost and len(members) - lost < cluster_min.get(x, 1)):
                down.add(x)
                changed = True
    degraded = set()
    changed = True
    while changed:
        changed = False
        for x in range(n):
            if x in down or x in degraded:
                continue
            if any(v in down or v in degraded for v, _ in deps[x]):
                degraded.add(x)
                changed = True
    out = {x: "down" for x in down if x not in roots}
    out.update({x: "degraded" for x in degraded})
    return out


def memory_graph(n, edges, cluster_min) -> LiveGraph:
    graph = LiveGraph()
    G = graph.G
    for i in range(n):
        data = {"name": f"ci-{i}", "ci_class": "cluster" if i in cluster_min else "server", "criticality": "low"}
        if i in cluster_min:
            data["min_up"] = cluster_min[i]
        G.add_node(i, **data)
    for u, v, kind in edges:
        G.add_edge(u, v)
        G._succ[u][v] = G._pred[v][u] = edge_data({*G._succ[u][v], kind})
        if kind == MEMBER:
            graph.member_targets.add(u)
    graph.built = True
    return graph


def check_paths(prop, edges, roots):
    edge_set = {(u, v) for u, v, _ in edges}
    for node in prop.state:
        if node in roots:
            continue
        path = prop.path(node)
        assert path[0] in roots and path[-1] == node
        assert len(path) - 1 == prop.depth(node)
        for dependency, dependent in zip(path, path[1:], strict=False):
            assert (dependent, dependency) in edge_set


@settings(max_examples=300, deadline=None)
@given(random_graphs(clusters=False))
def test_without_clusters_impact_is_a_plain_bfs(case):
    n, edges, cluster_min, roots = case
    prop = propagate(memory_graph(n, edges, cluster_min), roots)
    got = {k: prop.depth(k) for k in prop.state if k not in roots}
    assert got == bfs_depths(n, edges, roots)
    assert all(prop.state[k] == 2 for k in got)
    check_paths(prop, edges, roots)


@settings(max_examples=300, deadline=None)
@given(random_graphs())
def test_with_clusters_states_match_the_fixpoint(case):
    n, edges, cluster_min, roots = case
    prop = propagate(memory_graph(n, edges, cluster_min), roots)
    got = {k: {2: "down", 1: "degraded"}[s] for k, s in prop.state.items() if k not in roots}
    assert got == fixpoint_states(n, edges, cluster_min, roots)
    check_paths(prop, edges, roots)


@settings(max_examples=300, deadline=None)
@given(random_graphs(), st.randoms(use_true_random=False))
def test_the_answer_does_not_depend_on_the_order_the_graph_learnt_its_edges(case, rnd):
    """A graph refreshed from the change log holds each CI's dependents in the order they were
    written; a rebuilt or restored one in another. Both must name the same explaining path when
    several are equally short (a graph host and the process asking it are compared this way)."""
    n, edges, cluster_min, roots = case
    shuffled = list(edges)
    rnd.shuffle(shuffled)

    def answer(edge_order):
        prop = propagate(memory_graph(n, edge_order, cluster_min), roots)
        return {k: (prop.state[k], prop.depth(k), prop.path(k)) for k in prop.state}

    assert answer(shuffled) == answer(list(reversed(shuffled)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=random_graphs(max_nodes=8))
def test_the_service_over_the_database_agrees(estate, case):
    """Through the real tables, change log and graph refresh, live and as of now."""
    from cairn.db import utcnow
    from relations import services

    n, edges, cluster_min, roots = case
    ids = [estate.cluster(cluster_min[i]) if i in cluster_min else estate.ci("server") for i in range(n)]
    for u, v, kind in edges:  # u depends on v; member_of runs member -> cluster
        if kind == MEMBER:
            estate.rel(ids[v], kind, ids[u])
        else:
            estate.rel(ids[u], kind, ids[v])
    expected = {ids[k]: s for k, s in fixpoint_states(n, edges, cluster_min, roots).items()}
    root_ids = [ids[r] for r in roots]
    live = services.impact(root_ids)
    assert {i.ci_id: i.state for i in live.impacted} == expected
    past = services.impact(root_ids, as_of=utcnow())
    assert [(i.ci_id, i.state, i.depth) for i in past.impacted] == [(i.ci_id, i.state, i.depth) for i in live.impacted]
    for item in past.impacted:  # ties between equally short paths may break either way
        assert item.path[0] in root_ids and item.path[-1] == item.ci_id and len(item.path) == item.depth + 1


def _passive_memory_graph(n, edges, passive_edges) -> LiveGraph:
    graph = memory_graph(n, edges, {})
    for u, v in passive_edges:
        graph.passive.add_edge(u, v)
    return graph


@settings(max_examples=300, deadline=None)
@given(random_graphs(clusters=False), st.lists(st.tuples(st.integers(0, 13), st.integers(0, 13))), st.randoms())
def test_paths_are_shortest_and_do_not_depend_on_the_order_the_graph_learnt_its_edges(case, passive, rnd):
    """Directed and undirected chains between every pair: real edges, as short as a plain BFS says,
    and the same chain whatever order the graph was given its edges in (a graph host and the
    process asking it must name the same one of several equally short chains)."""
    from relations import paths

    n, edges, _, _ = case
    passive = [(u, v) for u, v in passive if u < n and v < n and u != v]
    orders = [list(edges), list(edges)]
    rnd.shuffle(orders[1])
    graphs = [_passive_memory_graph(n, order, passive) for order in (orders[0], list(reversed(orders[1])))]
    directed = {(u, v) for u, v, _ in edges}
    either = directed | {(v, u) for u, v in directed} | set(passive) | {(v, u) for u, v in passive}
    for a in range(n):
        shortest_directed = hop_distances(n, directed, [a])
        shortest_either = hop_distances(n, either, [a])
        for b in range(n):
            found = [paths.directed_path(g.G, a, b) for g in graphs]
            assert found[0] == found[1]
            if b not in shortest_directed:
                assert found[0] is None
            else:
                assert found[0][0] == a and found[0][-1] == b and len(found[0]) - 1 == shortest_directed[b]
                assert all(step in directed for step in zip(found[0], found[0][1:], strict=False))
            loose = [paths.undirected_path(g, a, b) for g in graphs]
            assert loose[0] == loose[1]
            assert (loose[0] is None) == (b not in shortest_either)
            if loose[0] is not None:
                assert loose[0][0] == a and loose[0][-1] == b and len(loose[0]) - 1 == shortest_either[b]
                assert all(step in either for step in zip(loose[0], loose[0][1:], strict=False))


@settings(max_examples=300, deadline=None)
@given(random_graphs(clusters=False), st.randoms())
def test_each_cycle_shown_is_a_shortest_circle_through_its_lowest_ci_whatever_the_edge_order(case, rnd):
    import networkx as nx

    from relations import paths

    n, edges, _, _ = case
    shuffled = list(edges)
    rnd.shuffle(shuffled)
    graphs = [memory_graph(n, order, {}).G for order in (shuffled, list(reversed(shuffled)))]
    directed = {(u, v) for u, v, _ in edges}
    for component in nx.strongly_connected_components(graphs[0]):
        if len(component) < 2:
            continue
        members = sorted(component)
        shown = [paths.shortest_cycle(G, members) for G in graphs]
        assert shown[0] == shown[1]
        circle = shown[0]
        assert circle[0] == members[0] and len(set(circle)) == len(circle) and set(circle) <= component
        assert all(step in directed for step in zip(circle, circle[1:] + circle[:1], strict=False))
        back = hop_distances(n, directed, [members[0]])
        shortest = min(back[u] + 1 for u, v in directed if v == members[0] and u in back)
        assert len(circle) == shortest
