"""Impact answers at any size: each answer computed once per question and graph version, then
served whole, a page at a time, or summarised.

A traversal over a large blast radius costs tens to hundreds of milliseconds, and a client paging
through it, or asking for the summary after the list, would pay that again on every request. So
the viewer-independent answer (an ``ImpactResult`` with what was derived from it, an ``Answer``)
is kept in a small least-recently-used cache in each process, keyed by the database, the graph
version *and its stamp*, and every parameter of the question (roots, depth, as_of, types, classes,
direction, include_inactive). Every write that changes what an answer holds moves the graph version
(relations.graph, relations.services._before_flush: relationships, the CI fields the graph mirrors,
moves into and out of the inactive statuses), and the random stamp tells a rolled-back version from
the next one to take its number; so a write is never answered from before it, it is a new key.
Entries of the other versions of a database are dropped when a newer one is stored.

Visibility is never cached: what a requester may see hangs on rows the graph version does not follow
(who a CI is assigned to), so it is applied to the cached answer on every request, as it was before
there was a cache. The cache holds only what every viewer shares.

The bound is on items (impacted and inactive CIs of every entry; an entry counts at least one), not
on entries: one 100,000-CI answer weighs as much as 10,000 small ones. Derived structures attached
later (the JSON of the whole list, the chains to business services) add their items too. An answer
larger than the whole bound is served but not kept. ``CAIRN_IMPACT_CACHE_ITEMS`` sets the bound
(0: no cache).

Derived once, on first use, and kept with the answer: the page order (depth, criticality, id), the
business services each impacted CI leads to (the summary's ``by_business_service``), the unrestricted
counts, and the JSON of the whole ``impacted`` list as a viewer who sees everything gets it, written
once with orjson and spliced into every later body as an ``orjson.Fragment``.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass

import orjson

from relations.impact import _EMPTY, ImpactedCI, ImpactResult, _member_only

CRITICALITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
DEFAULT_MAX_ITEMS = 200_000
_DOWN, _DEGRADED = 0, 1  # index into the [down, degraded] pairs below


@dataclass(eq=False)
class Answer:
    """One question's answer as every viewer shares it, and what has been derived from it since."""

    result: ImpactResult
    allowed: frozenset[str] | None = None  # the relationship types the walk followed (None: every type)
    # CIs the walk went through that ``result.impacted`` leaves out (other classes than asked; CIs
    # deleted since an as_of moment): failures travel through them to business services all the same.
    walked: tuple[int, ...] = ()
    key: tuple | None = None
    weight: int = 0
    ranked: list[ImpactedCI] | None = None
    chains: dict[int, int] | None = None
    counts: dict | None = None
    # What a summary for a viewer who sees everything holds apart from the open incidents.
    summary_parts: dict | None = None
    by_id: dict[int, ImpactedCI] | None = None
    impacted_json: bytes | None = None
    down: int | None = None

    def down_count(self) -> int:
        if self.down is None:
            self.down = sum(1 for i in self.result.impacted if i.state == "down")
        return self.down


def question_key(
    database: str, version: int, stamp: int, roots, *, max_depth, as_of, allowed, classes, direction, include_inactive
) -> tuple:
    """The cache key of a question at a graph version (roots in the order asked: the answer shows them so)."""
    return (
        database,
        version,
        stamp,
        tuple(roots),
        max_depth,
        as_of.isoformat() if as_of is not None else None,
        frozenset(allowed) if allowed is not None else None,
        frozenset(classes) if classes is not None else None,
        direction,
        bool(include_inactive),
    )


def _weight(result: ImpactResult) -> int:
    return max(1, len(result.impacted) + len(result.extras.get("inactive", ())))


class AnswerCache:
    """A least-recently-used map of answers, bounded by the items they hold; safe across threads."""

    def __init__(self, max_items: int = DEFAULT_MAX_ITEMS):
        self.max_items = max_items
        self.items = 0
        self.stats = {"hits": 0, "misses": 0, "traversals": 0, "evictions": 0, "too_large": 0}
        self._entries: OrderedDict[tuple, Answer] = OrderedDict()
        self._versions: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Answer | None:
        with self._lock:
            answer = self._entries.get(key)
            if answer is None:
                self.stats["misses"] += 1
                return None
            self._entries.move_to_end(key)
            self.stats["hits"] += 1
            return answer

    def put(self, key: tuple, answer: Answer, max_items: int | None = None) -> None:
        """Keep ``answer`` under ``key`` (the first three parts: database, version, stamp)."""
        weight = _weight(answer.result)
        answer.key, answer.weight = key, weight
        with self._lock:
            if max_items is not None:
                self.max_items = max_items
            database, version = key[0], key[1:3]
            if self._versions.get(database) != version:
                self._versions[database] = version
                for old in [k for k in self._entries if k[0] == database and k[1:3] != version]:
                    self._drop(old)
            if weight > self.max_items:
                self.stats["too_large"] += 1
                return
            if key in self._entries:
                self._drop(key)
            self._entries[key] = answer
            self.items += weight
            self._evict()

    def grow(self, answer: Answer, items: int) -> None:
        """Count ``items`` more for an answer that had something derived from it."""
        with self._lock:
            if answer.key is None or self._entries.get(answer.key) is not answer:
                return
            answer.weight += items
            self.items += items
            self._evict()

    def traversed(self) -> None:
        """Count one traversal run for a question not found here."""
        with self._lock:
            self.stats["traversals"] += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._versions.clear()
            self.items = 0

    def snapshot(self) -> dict:
        with self._lock:
            return {**self.stats, "entries": len(self._entries), "items": self.items, "max_items": self.max_items}

    def _drop(self, key: tuple) -> None:
        answer = self._entries.pop(key)
        self.items -= answer.weight

    def _evict(self) -> None:
        while self.items > self.max_items and self._entries:
            _, answer = self._entries.popitem(last=False)
            self.items -= answer.weight
            self.stats["evictions"] += 1


cache = AnswerCache()


def stats() -> dict:
    """This process's answer cache: hits, misses, traversals run, evictions, entries, items."""
    return cache.snapshot()


def forget() -> None:
    """Drop every cached answer (with relations.graph.forget_graphs: tests, or after a restore)."""
    cache.clear()


# ---------------------------------------------------------------------------------------------
# Pages


def rank(item: ImpactedCI) -> tuple:
    """The page order: nearest first, then the most critical, then by id."""
    return item.depth, CRITICALITY_RANK.get(item.criticality, len(CRITICALITY_RANK)), item.ci_id


def ranked(answer: Answer, visible: set[int] | None) -> list[ImpactedCI]:
    """The impacted CIs in page order. For a viewer who may not see some, those come after the ones
    it sees at the same depth, by id: placed among them, they would tell how critical they are."""
    if visible is None:
        if answer.ranked is None:  # references to the items: not counted against the bound
            answer.ranked = sorted(answer.result.impacted, key=rank)
        return answer.ranked
    unseen = len(CRITICALITY_RANK) + 1

    def key(i: ImpactedCI) -> tuple:
        seen = i.ci_id in visible
        return i.depth, CRITICALITY_RANK.get(i.criticality, unseen - 1) if seen else unseen, i.ci_id

    return sorted(answer.result.impacted, key=key)


def page_of(items: list, page: int, page_size: int) -> list:
    start = (page - 1) * page_size
    return items[start : start + page_size] if start < len(items) else []


# ---------------------------------------------------------------------------------------------
# The JSON of the items


def item(i: ImpactedCI) -> dict:
    return {
        "ci": {"id": i.ci_id, "name": i.name, "ci_class": i.ci_class, "criticality": i.criticality},
        "depth": i.depth,
        "state": i.state,
        "path": list(i.path),  # a copy: the cached answer's own list must not reach a caller that edits
        "parent": i.parent,
    }


def items(impacted, visible: set[int] | None, hidden: dict) -> list[dict]:
    """The items as ``visible`` allows (None: all): an item it may not see is ``hidden`` with its
    depth and state, and the CIs it may not see are null on paths."""
    if visible is None:
        return [item(i) for i in impacted]
    return [
        {
            "ci": {"id": i.ci_id, "name": i.name, "ci_class": i.ci_class, "criticality": i.criticality}
            if i.ci_id in visible
            else dict(hidden),
            "depth": i.depth,
            "state": i.state,
            "path": [n if n in visible else None for n in i.path],
            "parent": i.parent if i.parent in visible else None,
        }
        for i in impacted
    ]


def impacted_fragment(answer: Answer) -> orjson.Fragment:
    """The whole ``impacted`` list as a viewer who sees everything gets it, as JSON written once."""
    if answer.impacted_json is None:
        answer.impacted_json = orjson.dumps([item(i) for i in answer.result.impacted])
        cache.grow(answer, len(answer.result.impacted))
    return orjson.Fragment(answer.impacted_json)


# ---------------------------------------------------------------------------------------------
# The summary


def ensure_chains(answer: Answer, adj) -> None:
    """Derive, for each impacted CI, the business services of the answer its failure reaches, as a
    bitmask over ``result.business_services``, from ``adj`` (the adjacency the answer was computed
    on: the live graph at the answer's version, or an as_of graph with the answer's CIs loaded).

    A CI reaches a service when a chain of the walk's relationships (of the followed types) leads from
    it to the service through CIs the walk reached. Each CI's mask is the OR of the masks of the CIs
    its failure goes on to, taken in depth-first finishing order (those come first), so without a
    cycle one pass settles every mask; passes repeat until nothing changes, which closes cycles."""
    if answer.chains is not None:
        return
    result = answer.result
    services = result.business_services
    if not services:
        answer.chains = {}
        return
    bit = {s: 1 << k for k, s in enumerate(services)}
    nbrs = adj.pred if result.extras.get("direction", "impact") == "impact" else adj.succ
    allowed = answer.allowed
    mask = {n: bit.get(n, 0) for n in (*answer.walked, *(i.ci_id for i in result.impacted), *result.roots)}
    onward: dict[int, list[int]] = {}
    for n in mask:
        if allowed is None:
            nexts = [p for p in nbrs.get(n, _EMPTY) if p in mask]
        else:
            nexts = [p for p, ed in nbrs.get(n, _EMPTY).items() if p in mask and _member_only(ed, allowed) is not None]
        if nexts:
            onward[n] = nexts
    order = _finishing_order(onward)
    changed = True
    while changed:
        changed = False
        for n in order:
            m = old = mask[n]
            for p in onward[n]:
                m |= mask[p]
            if m != old:
                mask[n] = m
                changed = True
    chains = {}
    for i in result.impacted:
        m = mask[i.ci_id] & ~bit.get(i.ci_id, 0)
        if m:
            chains[i.ci_id] = m
    answer.chains = chains
    cache.grow(answer, len(chains))


def _finishing_order(onward: dict[int, list[int]]) -> list[int]:
    """The nodes of ``onward`` (node -> its successors) in depth-first finishing order: a node after
    every successor it reaches, except along a cycle. Iterative, as chains can be thousands long."""
    order: list[int] = []
    seen: set[int] = set()
    for start in onward:
        if start in seen:
            continue
        seen.add(start)
        stack = [(start, iter(onward[start]))]
        while stack:
            n, successors = stack[-1]
            for p in successors:
                if p not in seen and p in onward:
                    seen.add(p)
                    stack.append((p, iter(onward[p])))
                    break
            else:
                stack.pop()
                order.append(n)
    return order


def _pair() -> list[int]:
    return [0, 0]


def _counts(answer: Answer, visible: set[int] | None) -> dict:
    """Down and degraded pairs by class, team, depth and business service (the CIs ``visible``
    allows; by depth every CI, as the list shows every depth), and the pair of the hidden ones."""
    if visible is None and answer.counts is not None:
        return answer.counts
    result = answer.result
    by_class: dict[str, list[int]] = {}
    by_team: dict[int | None, list[int]] = {}
    by_depth: dict[int, list[int]] = {}
    hidden = _pair()
    behind: Counter = Counter()
    chains = answer.chains or {}
    for i in result.impacted:
        s = _DOWN if i.state == "down" else _DEGRADED
        pair = by_depth.get(i.depth)
        if pair is None:
            pair = by_depth[i.depth] = _pair()
        pair[s] += 1
        if visible is not None and i.ci_id not in visible:
            hidden[s] += 1
            continue
        pair = by_class.get(i.ci_class)
        if pair is None:
            pair = by_class[i.ci_class] = _pair()
        pair[s] += 1
        pair = by_team.get(i.owner_team_id)
        if pair is None:
            pair = by_team[i.owner_team_id] = _pair()
        pair[s] += 1
        m = chains.get(i.ci_id)
        if m:
            behind[m, s] += 1
    by_service = [_pair() for _ in result.business_services]
    for (m, s), n in behind.items():
        while m:
            low = m & -m
            by_service[low.bit_length() - 1][s] += n
            m ^= low
    counts = {"by_class": by_class, "by_team": by_team, "by_depth": by_depth, "by_service": by_service}
    counts["hidden"] = hidden
    if visible is None and answer.chains is not None:
        answer.counts = counts
    return counts


def _pairs(pair: list[int]) -> dict:
    return {"down": pair[_DOWN], "degraded": pair[_DEGRADED]}


def _total(pair: list[int]) -> int:
    return pair[_DOWN] + pair[_DEGRADED]


def summary(answer: Answer, visible: set[int] | None, team_names: dict[int, str], incidents: dict[int, list]) -> dict:
    """What a change manager reads first, as ``visible`` allows (None: everything): counts of down and
    degraded CIs by class, owning team, business service and depth; the business services with the
    CIs their failure comes through; the impacted CIs with open incidents (``incidents``: CI id ->
    the open incidents on it the viewer may see). The lists may be shared with later answers of the
    same question: write them, don't change them."""
    result = answer.result
    if answer.by_id is None:
        answer.by_id = {i.ci_id: i for i in result.impacted}
    by_id = answer.by_id
    parts = answer.summary_parts if visible is None else None
    if parts is None:
        parts = _summary_parts(answer, visible, by_id)
        if visible is None and answer.counts is not None:
            answer.summary_parts = parts
    with_incidents = sorted((by_id[c] for c in incidents if c in by_id), key=rank)
    return {
        "by_class": parts["by_class"],
        "by_team": [
            {"id": t, "name": team_names.get(t) if t is not None else None, **pairs} for t, pairs in parts["by_team"]
        ],
        "by_depth": parts["by_depth"],
        "by_business_service": parts["by_business_service"],
        "open_incidents": [
            {
                "id": i.ci_id,
                "name": i.name,
                "ci_class": i.ci_class,
                "criticality": i.criticality,
                "state": i.state,
                "depth": i.depth,
                "incidents": incidents[i.ci_id],
            }
            for i in with_incidents
        ],
        "hidden": parts["hidden"],
    }


def _summary_parts(answer: Answer, visible: set[int] | None, by_id: dict[int, ImpactedCI]) -> dict:
    """The counts of a summary, as lists in their order (the same for every request of a viewer who
    sees everything: kept on the answer; team names are looked up per request)."""
    result = answer.result
    counts = _counts(answer, visible)
    services = []
    for k, sid in enumerate(result.business_services):
        if visible is not None and sid not in visible:
            continue
        s = by_id[sid]
        pair = counts["by_service"][k]
        services.append(
            {
                "id": sid,
                "name": s.name,
                "criticality": s.criticality,
                "state": s.state,
                "depth": s.depth,
                **_pairs(pair),
            }
        )
    # Down before degraded, the most critical first, then those with the most CIs behind them.
    services.sort(
        key=lambda e: (
            e["state"] != "down",
            CRITICALITY_RANK.get(e["criticality"], 9),
            -e["down"] - e["degraded"],
            e["id"],
        )
    )
    return {
        "by_class": [
            {"ci_class": c, **_pairs(p)}
            for c, p in sorted(counts["by_class"].items(), key=lambda e: (-_total(e[1]), e[0]))
        ],
        "by_team": [
            (t, _pairs(p))
            for t, p in sorted(counts["by_team"].items(), key=lambda e: (-_total(e[1]), e[0] is None, e[0] or 0))
        ],
        "by_depth": [{"depth": d, **_pairs(p)} for d, p in sorted(counts["by_depth"].items())],
        "by_business_service": services,
        "hidden": _pairs(counts["hidden"]),
    }
