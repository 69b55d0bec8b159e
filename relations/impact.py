"""Impact propagation over a dependency graph, with cluster redundancy.

Works on any *adjacency*: the live graph (``relations.graph.LiveGraph``) or the graph as it was at
some moment (``AsOfGraph``, read from the database level by level). Both offer ``pred``/``succ``
(node -> {neighbour: {relationship id: type}}, relationships of impact-less types left out),
``member_targets`` (clusters), ``inactive`` (CIs retired or disposed), ``members_total``, ``min_up``,
``node`` and ``prefetch``.

Semantics, for a set of failing roots:
- a CI that depends on a down CI is down;
- a cluster (the dependent end of ``member_of`` edges) whose member goes down is down only when
  fewer than ``min_members_up`` members remain up, otherwise degraded;
- a CI that depends on a degraded CI is degraded (down wins when both apply);
- an inactive CI (retired, disposed) has left the estate: it is neither down nor degraded, the walk
  does not go through it, and it counts as no cluster member; the walk notes where it met one
  (``Propagation.inactive``), for answers that show them apart. A failing root is walked from
  whatever its status: the caller asked what its failure would do.
Every impacted CI carries the hop depth and the path from a failing root that explains its state.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select, true

from cmdb.lifecycle import is_active
from cmdb.models import ConfigurationItem
from relations.models import Relationship
from relations.types import MEMBER_OF

DOWN, DEGRADED = 2, 1
STATE_NAMES = {DOWN: "down", DEGRADED: "degraded"}
_EMPTY: dict = {}
_CHUNK = 500


@dataclass(slots=True)
class ImpactedCI:
    ci_id: int
    name: str
    ci_class: str
    criticality: str
    depth: int
    state: str  # "down" | "degraded"
    path: list[int]
    parent: int | None = None  # path[-2]: the CI whose failure (or degradation) explains this one's
    owner_team_id: int | None = None


@dataclass
class ImpactResult:
    roots: list[int]
    impacted: list[ImpactedCI]
    business_services: list[int]
    owner_team_ids: list[int]
    graph_version: int
    extras: dict = field(default_factory=dict)

    def ci_ids(self) -> frozenset[int]:
        """The roots and the impacted CIs (computed once: a cached answer is asked again and again)."""
        ids = self.__dict__.get("_ci_ids")
        if ids is None:
            ids = self.__dict__["_ci_ids"] = frozenset(self.roots).union(i.ci_id for i in self.impacted)
        return ids

    def __reduce__(self):
        # Pickled as columns (the graph host sends answers this way, relations.graphd): an object
        # per impacted CI would cost ten times as much to write and read.
        return (
            _result_from_columns,
            (self.roots, _columns(self.impacted), self.business_services, self.owner_team_ids,
             self.graph_version, self.extras),
        )  # fmt: skip


_NONE = -1  # no parent / no owning team, in the columns


def _columns(impacted: list[ImpactedCI]) -> tuple:
    """The impacted CIs as arrays and a table of the repeated strings (class, criticality, state)."""
    strings: dict[str, int] = {}
    code = strings.setdefault
    ids, names, kinds, depths, parents, teams = array("q"), [], array("H"), array("H"), array("q"), array("q")
    flat, ends = array("q"), array("Q")
    for i in impacted:
        ids.append(i.ci_id)
        names.append(i.name)
        kinds.append(code(i.ci_class, len(strings)))
        kinds.append(code(i.criticality, len(strings)))
        kinds.append(code(i.state, len(strings)))
        depths.append(i.depth)
        parents.append(_NONE if i.parent is None else i.parent)
        teams.append(_NONE if i.owner_team_id is None else i.owner_team_id)
        flat.extend(i.path)
        ends.append(len(flat))
    return list(strings), ids, names, kinds, depths, parents, teams, flat, ends


def _result_from_columns(roots, columns, business_services, owner_team_ids, graph_version, extras) -> ImpactResult:
    strings, ids, names, kinds, depths, parents, teams, flat, ends = columns
    kinds, flat, ends = kinds.tolist(), flat.tolist(), ends.tolist()
    impacted, start = [], 0
    for k, (ci_id, name, depth, parent, team) in enumerate(
        zip(ids.tolist(), names, depths.tolist(), parents.tolist(), teams.tolist(), strict=True)
    ):
        end = ends[k]
        impacted.append(
            ImpactedCI(
                ci_id,
                name,
                strings[kinds[3 * k]],
                strings[kinds[3 * k + 1]],
                depth,
                strings[kinds[3 * k + 2]],
                flat[start:end],
                None if parent == _NONE else parent,
                None if team == _NONE else team,
            )  # fmt: skip
        )
        start = end
    return ImpactResult(roots, impacted, business_services, owner_team_ids, graph_version, extras)


@dataclass
class Propagation:
    """Raw outcome of a traversal: the state of every reached node and how it was reached."""

    state: dict[int, int]
    depth_down: dict[int, int]
    par_down: dict[int, int | None]
    depth_deg: dict[int, int]
    par_deg: dict[int, tuple[int, int]]
    # Inactive CIs the walk met and did not enter: node -> (the node it came from, depth).
    inactive: dict[int, tuple[int, int]] = field(default_factory=dict)

    def depth(self, n: int) -> int:
        return self.depth_down[n] if self.state[n] == DOWN else self.depth_deg[n]

    def path(self, n: int) -> list[int]:
        """From a root to ``n``, following the links that explain ``n``'s final state."""
        out = [n]
        s = self.state[n]
        par_down, par_deg = self.par_down, self.par_deg
        while True:
            if s == DOWN:
                n = par_down[n]
                if n is None:
                    break
            else:
                n, s = par_deg[n]
            out.append(n)
        out.reverse()
        return out

    def inactive_path(self, n: int) -> list[int]:
        return [*self.path(self.inactive[n][0]), n]


def _member_only(ed: dict, allowed) -> bool | None:
    """None: no allowed type on the edge; True: only member_of; False: a hard dependency."""
    if allowed is None:
        return all(t == MEMBER_OF for t in ed.values())
    seen = False
    only = True
    for t in ed.values():
        if t in allowed:
            seen = True
            if t != MEMBER_OF:
                only = False
    return only if seen else None


def propagate(adj, roots, *, max_depth=None, allowed=None, direction="impact") -> Propagation:
    """Breadth-first, level by level, so depths are hop counts; a node's state only ever rises
    (unreached < degraded < down), so cycles terminate and each node is expanded at most twice."""
    impact = direction == "impact"
    state = dict.fromkeys(roots, DOWN)
    depth_down = dict.fromkeys(roots, 0)
    par_down: dict[int, int | None] = dict.fromkeys(roots, None)
    depth_deg: dict[int, int] = {}
    par_deg: dict[int, tuple[int, int]] = {}
    down_members: dict[int, int] = {}
    member_targets = adj.member_targets
    inactive, met_inactive = adj.inactive, {}
    # Frontiers are walked in CI id order, so that of several equally short explaining paths the
    # answer names the same one whatever order the graph's adjacency happens to hold (a graph
    # refreshed from the change log appends, a rebuilt or restored one does not).
    down_frontier, deg_frontier = sorted(state), []
    d = 0
    while (down_frontier or deg_frontier) and (max_depth is None or d < max_depth):
        adj.prefetch(down_frontier + deg_frontier, direction)
        nbrs = adj.pred if impact else adj.succ
        d += 1
        next_down, next_deg = [], []
        for n in down_frontier:
            n_is_cluster = not impact and n in member_targets
            for p, ed in nbrs.get(n, _EMPTY).items():
                ps = state.get(p, 0)
                if ps == DOWN:
                    continue
                if allowed is None and not (p in member_targets if impact else n_is_cluster):
                    if p in inactive:
                        met_inactive.setdefault(p, (n, d))
                        continue
                    ns = DOWN
                else:
                    only = _member_only(ed, allowed)
                    if only is None:
                        continue
                    if p in inactive:
                        met_inactive.setdefault(p, (n, d))
                        continue
                    if not only:
                        ns = DOWN
                    elif impact:
                        # p is a cluster losing member n
                        lost = down_members[p] = down_members.get(p, 0) + 1
                        ns = DOWN if adj.members_total(p) - lost < adj.min_up(p) else DEGRADED
                    else:
                        # n is a cluster and p one of its members: can n survive losing p alone?
                        ns = DEGRADED if adj.members_total(n) - 1 >= adj.min_up(n) else DOWN
                if ns == DOWN:
                    state[p] = DOWN
                    depth_down[p] = d
                    par_down[p] = n
                    next_down.append(p)
                elif ps == 0:
                    state[p] = DEGRADED
                    depth_deg[p] = d
                    par_deg[p] = (n, DOWN)
                    next_deg.append(p)
        for n in deg_frontier:
            for p, ed in nbrs.get(n, _EMPTY).items():
                if p in state:
                    continue
                if allowed is not None and _member_only(ed, allowed) is None:
                    continue
                if p in inactive:
                    met_inactive.setdefault(p, (n, d))
                    continue
                state[p] = DEGRADED
                depth_deg[p] = d
                par_deg[p] = (n, DEGRADED)
                next_deg.append(p)
        next_down.sort()
        next_deg.sort()
        down_frontier, deg_frontier = next_down, next_deg
    for root in roots:
        met_inactive.pop(root, None)
    return Propagation(state, depth_down, par_down, depth_deg, par_deg, met_inactive)


def takes_down(adj, failing: int, victim: int, within: set[int]) -> bool:
    """Whether ``failing`` going down alone takes ``victim`` down (only nodes in ``within`` count)."""
    pred, member_targets, inactive = adj.pred, adj.member_targets, adj.inactive
    down = {failing}
    lost: dict[int, int] = {}
    stack = [failing]
    while stack:
        n = stack.pop()
        for p, ed in pred.get(n, _EMPTY).items():
            if p in down or p not in within or p in inactive:
                continue
            if p in member_targets and _member_only(ed, None):
                c = lost[p] = lost.get(p, 0) + 1
                if adj.members_total(p) - c >= adj.min_up(p):
                    continue
            if p == victim:
                return True
            down.add(p)
            stack.append(p)
    return False


def single_points_of_failure(adj, service: int) -> list[int]:
    """CIs whose failure alone takes ``service`` down, redundancy respected.

    With every dependency hard, that is the whole dependency closure; a redundant cluster (one
    that survives losing a member) breaks the chain, so the CIs reached only through one are
    checked by simulating their failure inside the closure.
    """
    succ, member_targets, inactive = adj.succ, adj.member_targets, adj.inactive
    closure = {service}
    stack = [service]
    while stack:
        n = stack.pop()
        for p in succ.get(n, _EMPTY):
            if p not in closure and p not in inactive:
                closure.add(p)
                stack.append(p)
    hard = {service}
    stack = [service]
    while stack:
        n = stack.pop()
        redundant_cluster = n in member_targets and adj.members_total(n) - 1 >= adj.min_up(n)
        for p, ed in succ.get(n, _EMPTY).items():
            if p in hard or p in inactive:
                continue
            if redundant_cluster and _member_only(ed, None):
                continue
            hard.add(p)
            stack.append(p)
    spofs = hard - {service}
    for candidate in closure - hard:
        if takes_down(adj, candidate, service, closure):
            spofs.add(candidate)
    return sorted(spofs)


class AsOfGraph:
    """The relationships valid at ``as_of``, read from the database a BFS level at a time, and the
    CIs' lifecycle status at that moment (names, classes and criticality are today's)."""

    def __init__(self, session, as_of: datetime, types: dict):
        self.session = session
        self.as_of = as_of
        self.forward = {name for name, t in types.items() if t.forward}
        self.passive = {name for name, t in types.items() if not t.propagates}
        self.pred: dict[int, dict] = {}
        self.succ: dict[int, dict] = {}
        self.member_targets: set[int] = set()
        self.inactive: set[int] = set()
        self._loaded: set[int] = set()
        self._nodes: dict[int, dict] = {}
        self._statuses: dict[int, str] = {}

    def _valid(self):
        r = Relationship
        return (r.valid_from <= self.as_of) & or_(r.valid_to.is_(None), r.valid_to > self.as_of)

    def prefetch(self, nodes, direction=None) -> None:
        wanted = [n for n in set(nodes) if n not in self._loaded]
        r = Relationship
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i : i + _CHUNK]
            self._loaded.update(chunk)
            for n in chunk:
                self.pred.setdefault(n, {})
                self.succ.setdefault(n, {})
            rows = self.session.execute(
                select(r.id, r.source_id, r.target_id, r.type).where(
                    or_(r.source_id.in_(chunk), r.target_id.in_(chunk)),
                    self._valid(),
                    r.type.not_in(self.passive) if self.passive else true(),
                )
            )
            for rel_id, source, target, type_name in rows:
                u, v = (source, target) if type_name in self.forward else (target, source)
                ed = self.succ.setdefault(u, {}).get(v)
                if ed is None:
                    ed = {}
                    self.succ[u][v] = ed
                    self.pred.setdefault(v, {})[u] = ed
                ed[rel_id] = type_name
                if type_name == MEMBER_OF:
                    self.member_targets.add(u)
            self._load_statuses([n for c in chunk for n in (*self.succ[c], *self.pred[c])])

    def _load_statuses(self, ids) -> None:
        """The status at ``as_of`` of CIs met so far; the inactive ones go into ``inactive``."""
        from cmdb.services import statuses_at

        wanted = [n for n in set(ids) if n not in self._statuses]
        for i in range(0, len(wanted), _CHUNK):
            found = statuses_at(wanted[i : i + _CHUNK], self.as_of)
            self._statuses.update(found)
            self.inactive.update(n for n, status in found.items() if not is_active(status))

    def members_total(self, cluster: int) -> int:
        self.prefetch([cluster])
        inactive = self.inactive
        return sum(1 for m, ed in self.succ[cluster].items() if MEMBER_OF in ed.values() and m not in inactive)

    def min_up(self, cluster: int) -> int:
        data = self.node(cluster)
        return data.get("min_up", 1) if data else 1

    def load_nodes(self, ids) -> None:
        from relations.graph import _node_data

        ci = ConfigurationItem
        wanted = [n for n in ids if n not in self._nodes]
        self._load_statuses(wanted)
        for i in range(0, len(wanted), _CHUNK):
            for cid, name, ci_class, criticality, team, attributes, status in self.session.execute(
                select(ci.id, ci.name, ci.ci_class, ci.criticality, ci.owner_team_id, ci.attributes, ci.status).where(
                    ci.id.in_(wanted[i : i + _CHUNK])
                )
            ):
                status = self._statuses.get(cid, status)
                self._nodes[cid] = _node_data(name, ci_class, criticality, team, attributes, status)

    def node(self, n) -> dict | None:
        if n not in self._nodes:
            self.load_nodes([n])
        return self._nodes.get(n)
