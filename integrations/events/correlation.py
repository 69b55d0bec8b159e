"""Grouping alerting CIs through the dependency graph, and choosing each group's root cause.

An alert on CI ``c`` joins an open group when the group's root explains it (the root is ``c`` or
upstream of it, within ``hops``), when ``c`` explains the root (``c`` is upstream of it: ``c``
becomes the root), or, while the group is active (an alert joined it within the window), when ``c``
and one of the group's CIs depend on a common CI within ``hops`` (two hosts behind one switch, the
switch silent). An alert that fits several groups joins the oldest and the others are merged into
it: ``c`` connects them.

The root of a group's alerting CIs ``S`` (rules recorded on the group):
- ``single_ci``: one CI;
- ``alerting_ancestor``: a CI of ``S`` upstream of every other one (the topmost, when several);
- ``widest_blast_radius``: else the CI whose blast radius covers the most of ``S`` (closest on
  average first), alerting or not: ``tickets.graph.common_causes``, the ranking behind an incident's
  probable causes, over one key per alerting CI.
Walks use ``relations.impact.propagate`` on the live graph (``relations.graph.live_graph``), held
for the whole batch: one freshness check per batch, not per event. Their answers are kept for the
process while the graph's version stays (a storm asks about the same CIs batch after batch).
With a graph host (``CAIRN_GRAPHD_SOCKET``) the walks are asked of it instead
(``relations.services.bounded_walks``: the batch's upstream walks in one question), kept for the
batch only, and the job worker holds no graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from relations.impact import propagate
from relations.services import bounded_walks
from tickets.graph import common_causes


@dataclass
class Member:
    ci_id: int
    status: str
    flap_count: int
    last_change_at: datetime


@dataclass
class GroupState:
    """An open group as the batch sees it: its row, its alerts (id -> Member) and what changed."""

    group: object
    members: dict[int, Member] = field(default_factory=dict)
    new: bool = False
    # The root when the batch began (its incident links it); None for a group new in this batch.
    started_root: int | None = None
    touched: bool = False
    joined: int = 0
    # Incidents of groups merged into this one this batch: resolved as its duplicates.
    merged_tickets: list = field(default_factory=list)

    # The distinct CIs of the members, kept up to date by ``add`` (None: not computed yet).
    _cis: set[int] | None = None

    @property
    def root(self) -> int:
        return self.group.root_ci_id

    def add(self, alert_id: int, member: Member) -> None:
        self.members[alert_id] = member
        if self._cis is not None:
            self._cis.add(member.ci_id)

    def absorb(self, other: GroupState) -> None:
        self.members.update(other.members)
        self._cis = None
        other.members, other._cis = {}, None

    def cis(self) -> set[int]:
        if self._cis is None:
            self._cis = {m.ci_id for m in self.members.values()}
        return self._cis


# (graph identity, version, stamp, hops) -> the walks' answers; dropped whole when any of it moves.
_walks: dict = {"key": None, "up": {}, "down": {}}
MAX_CACHED_WALKS = 200_000


def _cache_for(graph, hops: int) -> tuple[dict, dict]:
    key = (id(graph), graph.version, graph.stamp, hops)
    if _walks["key"] != key or len(_walks["up"]) + len(_walks["down"]) > MAX_CACHED_WALKS:
        _walks.update(key=key, up={}, down={})
    return _walks["up"], _walks["down"]


class Correlator:
    """Walks and root choices for one batch: on one locked live graph of this process, or, with
    ``graph`` None, asked of the graph host (relations.graphd) so that a job worker keeps no graph."""

    def __init__(self, graph, hops: int):
        self.graph = graph
        self.hops = hops
        self._up, self._down = _cache_for(graph, hops) if graph is not None else ({}, {})

    def prefetch(self, ci_ids) -> None:
        """Walk upstream from all of ``ci_ids`` now: one question to the graph host, not one each."""
        self._walks(self._up, ci_ids, "dependencies")

    def _walks(self, cache: dict, ci_ids, direction: str) -> None:
        missing = [c for c in ci_ids if c not in cache]
        if not missing:
            return
        if self.graph is None:
            cache.update(bounded_walks(missing, hops=self.hops, direction=direction))
            return
        for ci_id in missing:
            prop = propagate(self.graph, [ci_id], max_depth=self.hops, direction=direction)
            cache[ci_id] = {n: prop.depth(n) for n in prop.state}

    def upstream(self, ci_id: int) -> dict[int, int]:
        """``ci_id`` and what it depends on within ``hops``: {ci: distance}."""
        self._walks(self._up, [ci_id], "dependencies")
        return self._up[ci_id]

    def downstream(self, ci_id: int) -> set[int]:
        """``ci_id`` and what depends on it within ``hops`` (its blast radius, so bounded)."""
        found = self._down.get(ci_id)
        if found is None:
            self._walks(self._down, [ci_id], "impact")
            found = self._down[ci_id] = set(self._down[ci_id])
        return found

    def explained(self, ci_id: int, state: GroupState) -> bool:
        """Whether the group's root is the CI, upstream of it or downstream of it (within ``hops``)."""
        root = state.root
        return root in self.upstream(ci_id) or root in self.downstream(ci_id)

    def near(self, ci_id: int, state: GroupState, near: dict[int, set[int]]) -> bool:
        """Whether the CI and one of the group's depend on a common CI within ``hops`` (``near``: CI
        -> ids of the active groups with a CI that is it or depends on it)."""
        group_id = state.group.id
        return any(group_id in near.get(n, ()) for n in self.upstream(ci_id))

    def choose_root(self, cis: set[int]) -> tuple[int, str, bool, dict]:
        """(root, rule, whether the root explains every CI, figures for the reasoning)."""
        if len(cis) == 1:
            only = next(iter(cis))
            return only, "single_ci", True, {"explained": 1, "alerting": 1, "mean_distance": 0.0}
        explains = common_causes({c: {c} for c in cis}, upstream=self.upstream)
        ranked = list(explains)
        whole = [c for c in ranked if len(explains[c]) == len(cis)]
        alerting_whole = [c for c in whole if c in cis]
        if alerting_whole:
            root, rule = alerting_whole[0], "alerting_ancestor"
        else:
            root, rule = ranked[0], "widest_blast_radius"
        explained = explains[root]
        figures = {
            "explained": len(explained),
            "alerting": len(cis),
            "mean_distance": round(sum(explained.values()) / len(explained), 2),
        }
        return root, rule, len(explained) == len(cis), figures

    def extend_root(self, state: GroupState, ci_id: int) -> bool:
        """Update the group's root for one more alerting CI without a full ranking where the answer
        is plain; False when a full ranking is needed."""
        group = state.group
        root = group.root_ci_id
        if not group.covers_all:
            return False
        if ci_id == root or root in self.upstream(ci_id):
            # The root explains it. A root that now alerts itself is an alerting ancestor.
            cis = state.cis()
            if (ci_id == root or root in cis) and (len(cis) > 1 or ci_id not in cis):
                group.rule = "alerting_ancestor"
            return True
        if root in self.downstream(ci_id):
            # Upstream of a root that explained everything: it explains everything too.
            group.root_ci_id, group.rule = ci_id, "alerting_ancestor"
            return True
        return False
