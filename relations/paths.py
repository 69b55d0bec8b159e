"""Shortest chains and circles in the dependency graph, chosen the same way whatever order the graph
learnt its edges in.

A graph refreshed from the change log holds each CI's neighbours in write order; a rebuilt or
restored one in node order (``relations.graph``, ``relations.snapshot``). networkx's
``bidirectional_shortest_path`` and ``find_cycle`` follow adjacency order, so when several chains
are equally short, a graph host and the process asking it (or two hosts) would name different
ones. Here every search goes breadth-first a whole level at a time in CI id order: a CI's parent on
a chain is the lowest id of the level before that links to it, and of several meeting points (or
closing CIs) the lowest id wins. Pure functions of the graph: no database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

Neighbours = Callable[[int], Iterable[int]]


def directed_path(G, a: int, b: int) -> list[int] | None:
    """A shortest chain of relationships from ``a`` to ``b`` along their direction (``G``'s
    edges), or None."""
    return _bidirectional(a, b, lambda n: G._succ.get(n, ()), lambda n: G._pred.get(n, ()))


def undirected_path(graph, a: int, b: int) -> list[int] | None:
    """A shortest chain between ``a`` and ``b`` ignoring direction and impact (``graph.G`` and the
    passive graph), or None."""
    either_way = partial(neighbours, graph)
    return _bidirectional(a, b, either_way, either_way)


def neighbours(graph, n: int):
    """Every CI linked to ``n`` by a current relationship, either way, of any type (a CI linked
    several ways comes several times)."""
    for adjacency in (graph.G._succ, graph.G._pred, graph.passive._succ, graph.passive._pred):
        yield from adjacency.get(n, ())


def shortest_cycle(G, members: list[int]) -> list[int]:
    """The circle shown for a strongly connected group (``members``, sorted): a shortest one
    through its lowest CI, as the CIs in order from it (the last one links back to the first)."""
    start = members[0]
    inside = set(members)
    parent: dict[int, int | None] = {start: None}
    level = [start]
    while level:
        closing = [n for n in level if n != start and start in G._succ[n]]
        if closing:
            return _chain(parent, min(closing))
        following = []
        for n in level:
            for m in G._succ[n]:
                if m in inside and m not in parent:
                    parent[m] = n
                    following.append(m)
        level = sorted(following)
    raise ValueError(f"CI {start} is on no circle of its group.")  # not strongly connected


def _bidirectional(a: int, b: int, forward: Neighbours, backward: Neighbours) -> list[int] | None:
    """Breadth-first from both ends (``forward`` from ``a``, ``backward`` from ``b``), a whole
    level at a time, the smaller frontier first; of the CIs where the two searches first meet,
    the lowest id."""
    if a == b:
        return [a]
    parents: tuple[dict[int, int | None], dict[int, int | None]] = ({a: None}, {b: None})
    frontiers = ([a], [b])
    steps = (forward, backward)
    while frontiers[0] and frontiers[1]:
        side = 0 if len(frontiers[0]) <= len(frontiers[1]) else 1
        mine, theirs, step = parents[side], parents[1 - side], steps[side]
        following, meetings = [], []
        for n in frontiers[side]:  # sorted: each CI's parent is the lowest id linking to it
            for m in step(n):
                if m in mine:
                    continue
                mine[m] = n
                following.append(m)
                if m in theirs:
                    meetings.append(m)
        if meetings:
            meeting = min(meetings)
            left = _chain(parents[0], meeting)
            right = _chain(parents[1], meeting)
            return left + right[-2::-1]
        following.sort()
        frontiers = (following, frontiers[1]) if side == 0 else (frontiers[0], following)
    return None


def _chain(parent: dict[int, int | None], end: int) -> list[int]:
    """The chain from the search's start to ``end``, following parents back."""
    chain = []
    n: int | None = end
    while n is not None:
        chain.append(n)
        n = parent[n]
    chain.reverse()
    return chain
