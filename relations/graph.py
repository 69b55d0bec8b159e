"""The per-process dependency graph, kept in step with the database through the change log.

Edges of ``G`` point from the dependent to what it depends on (``u -> v``: u needs v), whatever
the relationship type's own direction; each edge's data is the set of its relationships' type names
as a dict mapping each name to itself (two CIs may be linked by several types), one shared,
never-changed dict per set of names (``edge_data``): at a million CIs, one dict and one relationship
id per edge were half the graph's memory. Relationship ids are read from the table when an answer
shows them (paths, neighbourhoods). CI ids are interned: each is one int object wherever the graph
holds it. Relationships of types whose impact is ``none`` (an
installation) carry no failure: they live apart in ``passive`` (source -> target as recorded), so
the impact walk never sees them while neighbourhoods and paths still show them. Node data (in
``G``, also for CIs only linked by passive relationships) holds what an impact answer shows (name,
class, criticality, owning team; ``min_up`` for clusters; ``status`` for the CIs in an inactive
status, which are also in ``inactive``), so an answer needs no query per CI.

Consistency across processes: every transaction that changes the graph bumps the one-row
``graph_state`` (version + random stamp) before it writes its change-log rows. Before answering,
a process reads that row (one primary-key lookup); when it moved, the process reads the change
log past the last graph change it applied and reloads the current rows of the relationships and
CIs named there (state, not diffs, so applying twice is harmless). A full rebuild happens at the
first query, when the database went backwards (a rolled-back version), or when the increment is
larger than a rebuild would cost.

Fast cold start: after a full rebuild, a background thread writes the rebuilt graph to a snapshot
file (one per database, in ``CAIRN_GRAPH_SNAPSHOT_DIR``, by default the instance path; the format
is in ``relations.snapshot``; ``cairn graph snapshot`` writes one too). A process's first query
restores the graph from that file instead of rebuilding it when the file is usable against the
database (written by this graph code for this schema revision, its graph version not ahead of the
database's, its watermark row still there with the same time, the relationship types unchanged),
then catches up through the change log past the watermark exactly as a running process does (more
than ``MAX_INCREMENT_ROWS`` rows: a rebuild); when anything does not hold, it rebuilds. A snapshot
is tagged with its rebuild's version and watermark, so it carries the rebuild's guarantee (on
PostgreSQL, every graph change up to the watermark was committed and loaded).
"""

from __future__ import annotations

import functools
import gc
import logging
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import networkx as nx
from sqlalchemy import bindparam, case, null, or_, select, tuple_, union_all, update
from sqlalchemy.exc import IntegrityError

from cairn.audit.models import ChangeLog
from cairn.config import setting
from cairn.db import db, utcnow
from cmdb.lifecycle import is_active
from cmdb.models import ConfigurationItem
from relations import answers, snapshot
from relations.models import GraphState, Relationship, RelationshipType
from relations.types import BUILTIN_TYPES, IMPACT_DIRECTIONS, MEMBER_OF, SOURCE_DEPENDS_ON_TARGET

log = logging.getLogger("cairn.relations.graph")

# CI columns the graph's node data mirrors; a CI update touching one of them is a graph change.
GRAPH_CI_FIELDS = ("name", "ci_class", "criticality", "owner_team_id")
# More change-log rows than this since the last refresh: rebuild instead of applying them.
MAX_INCREMENT_ROWS = 20_000
_CHUNK = 500


def status_change_matters(before: str | None, after: str | None) -> bool:
    """A status change the graph must follow: into, out of or between inactive statuses (a move
    between two active ones, deployed -> in_stock, changes nothing the graph holds)."""
    return before != after and not (is_active(before) and is_active(after))


def is_graph_change(object_type: str, action: str, changes: dict | None) -> bool:
    """Whether a change-log row changes the graph. The writer side bumps the graph version for at
    least these changes (see ``relations.services``), which is what makes the reader's watermark safe."""
    if object_type == "relationship":
        return True
    if object_type != "ci" or action != "update" or not changes:
        return False
    if any(key in changes for key in GRAPH_CI_FIELDS):
        return True
    status = changes.get("status")
    if status and status_change_matters(*(list(status) + [None, None])[:2]):
        return True
    attributes = changes.get("attributes")
    if attributes:
        before, after = (attributes + [None, None])[:2]
        return (before or {}).get("min_members_up") != (after or {}).get("min_members_up")
    return False


# ---------------------------------------------------------------------------------------------
# Relationship types


@dataclass(frozen=True)
class TypeInfo:
    name: str
    label: str
    reverse_label: str
    impact: str
    source_classes: tuple[str, ...]
    target_classes: tuple[str, ...]

    @property
    def forward(self) -> bool:
        """True when the source depends on the target (the edge runs source -> target)."""
        return self.impact == SOURCE_DEPENDS_ON_TARGET

    @property
    def propagates(self) -> bool:
        """False for types whose impact is ``none``: recorded and shown, never followed by impact."""
        return self.impact in IMPACT_DIRECTIONS


def _type_fields(info: TypeInfo) -> dict:
    return {
        "name": info.name,
        "label": info.label,
        "reverse_label": info.reverse_label,
        "impact": info.impact,
        "source_classes": list(info.source_classes),
        "target_classes": list(info.target_classes),
    }


def _type_info(fields: dict) -> TypeInfo:
    return TypeInfo(
        fields["name"],
        fields["label"],
        fields["reverse_label"],
        fields["impact"],
        tuple(fields["source_classes"]),
        tuple(fields["target_classes"]),
    )


def load_types(session=None) -> dict[str, TypeInfo]:
    """The relationship types, seeding the built-in ones into an empty table."""
    session = session or db.session
    rows = list(session.scalars(select(RelationshipType).order_by(RelationshipType.id)))
    if not rows:
        try:
            with session.begin_nested():
                for spec in BUILTIN_TYPES:
                    session.add(RelationshipType(**spec))
                session.flush()
        except IntegrityError:
            pass  # another transaction seeded them meanwhile: theirs are read below
        rows = list(session.scalars(select(RelationshipType).order_by(RelationshipType.id)))
    return {
        r.name: TypeInfo(
            r.name, r.label, r.reverse_label, r.impact, tuple(r.source_classes or ()), tuple(r.target_classes or ())
        )
        for r in rows
    }


# ---------------------------------------------------------------------------------------------
# The version counter


def bump_version(connection) -> None:
    """Move the graph version in the caller's transaction (takes the row lock on PostgreSQL)."""
    import random

    table = GraphState.__table__
    values = {"version": table.c.version + 1, "stamp": random.getrandbits(62), "updated_at": utcnow()}
    result = connection.execute(update(table).where(table.c.id == 1).values(**values))
    if result.rowcount == 0:  # the row went missing (tables emptied): start again
        connection.execute(table.insert().values(id=1, version=1, stamp=random.getrandbits(62), updated_at=utcnow()))


_READ_VERSION = f"SELECT version, stamp FROM {GraphState.__tablename__} WHERE id = 1"


def read_version(session) -> tuple[int, int]:
    """The graph version and stamp, in the session's transaction. Every graph question reads it
    first, so it goes straight to the driver's cursor: SQLAlchemy's statement machinery around
    this one-row read was most of a small impact answer's time (0.9 ms of 1.1 on PostgreSQL)."""
    cursor = session.connection().connection.dbapi_connection.cursor()
    try:
        cursor.execute(_READ_VERSION)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return (row[0], row[1]) if row else (0, 0)


# ---------------------------------------------------------------------------------------------
# The graph


def _node_data(name, ci_class, criticality, owner_team_id, attributes=None, status=None) -> dict:
    data = {"name": name, "ci_class": ci_class, "criticality": criticality, "owner_team_id": owner_team_id}
    if ci_class == "cluster":
        min_up = (attributes or {}).get("min_members_up")
        data["min_up"] = min_up if isinstance(min_up, int) and min_up > 0 else 1
    if not is_active(status):
        data["status"] = status  # only inactive CIs carry it: a move between active statuses is no graph change
    return data


_EDGE_DATA: dict[frozenset, dict[str, str]] = {}


def edge_data(type_names) -> dict[str, str]:
    """The shared edge data dict of a set of relationship type names ({name: name}). Never change
    it in place: an edge whose types change gets another one."""
    key = frozenset(type_names)
    data = _EDGE_DATA.get(key)
    if data is None:
        names = [sys.intern(name) for name in sorted(key)]
        data = _EDGE_DATA.setdefault(key, dict(zip(names, names, strict=True)))
    return data


def _split_types(types: dict[str, TypeInfo]) -> tuple[set[str], set[str]]:
    """(types whose edges run source -> target, types that carry no impact)."""
    return {n for n, t in types.items() if t.forward}, {n for n, t in types.items() if not t.propagates}


class LiveGraph:
    """One process's copy of the current relationships; hold ``lock`` while reading it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.G = nx.DiGraph()
        # Relationships of impact-less types, source -> target (their ends' node data is in G).
        self.passive = nx.DiGraph()
        self.types: dict[str, TypeInfo] = {}
        # Clusters: nodes with at least one member_of edge to a member.
        self.member_targets: set[int] = set()
        # CIs in an inactive status (retired, disposed): never impacted, never counted as members.
        self.inactive: set[int] = set()
        self.version = -1
        self.stamp = 0
        self.watermark = 0  # change-log id up to which every graph change is applied
        self.watermark_at: datetime | None = None
        self.built = False
        # The snapshot file of this graph's database (None: no snapshots; see _graph_for_engine).
        self.snapshot_path: Path | None = None
        self.database_key = ""
        self._snapshot_lock = threading.Lock()  # one writer at a time
        self._seq_lock = threading.Lock()
        self._snapshot_seq = 0  # rebuilds whose snapshot was handed to a writer
        self._snapshot_written = 0  # the latest of them written
        self._snapshot_thread: threading.Thread | None = None
        self._copy_lock = threading.Lock()  # held while a snapshot writer copies the graph
        self.stats = {
            "rebuilds": 0,
            "refreshes": 0,
            "last_build_s": 0.0,
            "last_refresh_s": 0.0,
            "loaded_from": None,  # "tables" or "snapshot": how the graph was last loaded whole
            "restores": 0,
            "last_restore_s": 0.0,
            "restore_fallbacks": 0,  # snapshots found but not usable against the database
            "last_snapshot_copy_s": 0.0,  # the writer's copy of the graph, while increments wait
            "snapshot_writes": 0,
            "last_snapshot_write_s": 0.0,
            "snapshot_bytes": 0,
            "snapshot_failures": 0,
        }

    # -- adjacency interface shared with the as-of graph (see relations.impact)
    @property
    def pred(self):
        return self.G._pred

    @property
    def succ(self):
        return self.G._succ

    def prefetch(self, nodes, direction) -> None:
        return None

    def node(self, n) -> dict | None:
        return self.G._node.get(n)

    def min_up(self, cluster: int) -> int:
        data = self.G._node.get(cluster)
        return data.get("min_up", 1) if data else 1

    def members_total(self, cluster: int) -> int:
        """The cluster's active members (a retired member neither counts nor can fail)."""
        succ, inactive = self.G._succ.get(cluster, {}), self.inactive
        return sum(1 for m, ed in succ.items() if MEMBER_OF in ed and m not in inactive)

    # -- keeping it fresh
    def ensure_fresh(self, session) -> None:
        """Bring the graph up to the database's graph version (at most one tiny query if current)."""
        version, stamp = read_version(session)
        if self.built and version == self.version and stamp == self.stamp:
            return
        started = time.perf_counter()
        if not self.built:
            if self.snapshot_path is None or not self._restore(session, version):
                self.rebuild(session)
                return
            if version == self.version and stamp == self.stamp:
                return
            started = time.perf_counter()  # the catch-up below is timed as a refresh
        elif version < self.version:
            self.rebuild(session)
            return
        rows = self._changes_past_watermark(session)
        if rows is None or len(rows) > MAX_INCREMENT_ROWS:
            self.rebuild(session)
            return
        relevant = [r for r in rows if is_graph_change(r[1], r[3], r[5])]
        self._apply(
            session,
            {r[2] for r in relevant if r[1] == "relationship"},
            {r[2] for r in relevant if r[1] == "ci"},
        )
        if relevant:
            self.watermark, self.watermark_at = relevant[-1][0], relevant[-1][4]
        self.version, self.stamp = version, stamp
        self.stats["refreshes"] += 1
        self.stats["last_refresh_s"] = time.perf_counter() - started

    def _changes_past_watermark(self, session) -> list | None:
        """The graph's change-log rows past the watermark (at most one more than a refresh applies),
        or None when the row the graph stopped at is gone or another one (a rollback). One query:
        the watermark's row comes first, so checking it costs no round trip of its own."""
        rows = list(session.execute(_changes_from(), {"watermark": self.watermark}))
        if self.watermark:
            if not rows or rows[0][0] != self.watermark or rows[0][4] != self.watermark_at:
                return None
            del rows[0]
        return rows

    def rebuild(self, session) -> None:
        """Load the whole graph from the current relationships; when this graph keeps a snapshot,
        write it on a background thread."""
        self._rebuild(session)
        if self.snapshot_path is not None:
            self._write_snapshot_later(self.snapshot_tags(session))

    def _rebuild(self, session) -> None:
        started = time.perf_counter()
        if session.get_bind().dialect.name == "postgresql":
            # Wait for graph writers in flight, so every graph change up to the watermark read
            # next is committed and in what we load; held until this transaction ends.
            row = session.execute(
                select(GraphState.version, GraphState.stamp).where(GraphState.id == 1).with_for_update(read=True)
            ).first()
            version, stamp = (row[0], row[1]) if row else (0, 0)
        else:
            version, stamp = read_version(session)
        watermark_row = session.execute(
            select(ChangeLog.id, ChangeLog.at).order_by(ChangeLog.id.desc()).limit(1)
        ).first()
        types = load_types(session)
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            result = session.execute(
                select(Relationship.id, Relationship.source_id, Relationship.target_id, Relationship.type)
                .where(Relationship.valid_to.is_(None))
                .execution_options(yield_per=20_000)
            )
            G, P, member_targets = _fill(result, types)
            node = G._node
            for cid, data in self._load_nodes(session, list(node)).items():
                node[cid] = data
        finally:
            if gc_was_enabled:
                gc.enable()
        # The graph is long-lived: keep the collector from walking its ~1M objects again and again.
        gc.freeze()
        watermark, watermark_at = (watermark_row[0], watermark_row[1]) if watermark_row else (0, None)
        self._install(G, P, types, member_targets, version, stamp, watermark, watermark_at)
        self.stats["rebuilds"] += 1
        self.stats["last_build_s"] = time.perf_counter() - started
        self.stats["loaded_from"] = "tables"
        log.info(
            "graph rebuilt",
            extra={"nodes": G.number_of_nodes(), "edges": G.number_of_edges(), "seconds": self.stats["last_build_s"]},
        )

    def snapshot_tags(self, session) -> dict:
        """What a snapshot of the graph as it is now is tagged with (see relations.snapshot)."""
        return {
            "database": self.database_key,
            "version": self.version,
            "stamp": self.stamp,
            "watermark": self.watermark,
            "watermark_at": self.watermark_at,
            "types": [_type_fields(t) for t in self.types.values()],
            "schema": _schema_revision(session),
            "code": graph_code_fingerprint(),
        }

    def _install(self, G, P, types, member_targets, version, stamp, watermark, watermark_at) -> None:
        self.G, self.passive, self.types, self.member_targets = G, P, types, member_targets
        self.inactive = {n for n, data in G._node.items() if "status" in data}
        self.version, self.stamp = version, stamp
        self.watermark, self.watermark_at = watermark, watermark_at
        self.built = True

    # -- the snapshot
    def _restore(self, session, version: int) -> bool:
        """Load the graph from its snapshot file when there is one this database can use (then the
        caller catches up from the change log past its watermark); False: rebuild instead."""
        started = time.perf_counter()
        level = logging.WARNING  # a file that is not a good snapshot
        try:
            snap = snapshot.read(self.snapshot_path, self.database_key)
        except snapshot.SnapshotError as exc:
            snap, reason = None, str(exc)
        else:
            if snap is None:
                return False  # none written yet
            types = load_types(session)
            reason = _unusable(session, snap, version, types)
            if reason is not None:
                level = logging.INFO  # a good one the database has moved past: expected now and then
        if reason is None:
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                G, P, member_targets = snap.graph()
            except snapshot.SnapshotError as exc:
                reason = str(exc)
            finally:
                if gc_was_enabled:
                    gc.enable()
        if reason is not None:
            log.log(level, "graph snapshot %s not used, rebuilding from the tables: %s", self.snapshot_path, reason)
            self.stats["restore_fallbacks"] += 1
            return False
        gc.freeze()
        self._install(G, P, types, member_targets, snap.version, snap.stamp, snap.watermark, snap.watermark_at)
        self.stats["restores"] += 1
        self.stats["last_restore_s"] = time.perf_counter() - started
        self.stats["loaded_from"] = "snapshot"
        log.info(
            "graph restored from its snapshot",
            extra={"nodes": snap.nodes, "edges": snap.edges, "seconds": self.stats["last_restore_s"]},
        )
        return True

    def _write_snapshot_later(self, tags: dict) -> None:
        """Write the snapshot of the graph just rebuilt on a background thread, so the rebuild's caller
        does not wait for it. The thread reads the graph without the graph lock (queries only read it
        too); the one thing that changes a graph in place, ``_apply``, waits for ``_copy_lock``, held
        from here until the thread has copied what it needs (a rebuild makes new objects, leaving the
        ones being copied alone). Encoding and writing the copy need no lock at all. Not a daemon: an
        exiting process finishes the file (a killed one leaves a temporary file, swept later)."""
        with self._seq_lock:
            self._snapshot_seq += 1
            seq = self._snapshot_seq
        graph = (self.G, self.passive, self.member_targets, list(self.types))
        self._copy_lock.acquire()  # free unless the previous rebuild's writer is still copying
        try:
            thread = threading.Thread(
                target=self._write_snapshot, args=(graph, tags, seq), name="cairn-graph-snapshot", daemon=False
            )
            thread.start()
        except BaseException:
            self._copy_lock.release()
            raise
        self._snapshot_thread = thread

    def _write_snapshot(self, graph: tuple, tags: dict, seq: int) -> None:
        started = time.perf_counter()
        try:
            try:
                kept = snapshot.capture(*graph, **tags)
            finally:
                self._copy_lock.release()
            self.stats["last_snapshot_copy_s"] = time.perf_counter() - started
            with self._snapshot_lock:  # one writer at a time; an older rebuild's never replaces a newer one's
                if seq < self._snapshot_written:
                    return
                size = snapshot.write(self.snapshot_path, kept.finish())
                self._snapshot_written = seq
        except Exception as exc:  # a snapshot is an optimisation: never fail the process for it
            self.stats["snapshot_failures"] += 1
            log.warning("graph snapshot %s not written: %s", self.snapshot_path, exc, exc_info=True)
            return
        self.stats["snapshot_writes"] += 1
        self.stats["last_snapshot_write_s"] = time.perf_counter() - started
        self.stats["snapshot_bytes"] = size

    def wait_for_snapshot(self, timeout: float | None = None) -> None:
        """Wait until the snapshot writer started by the last rebuild is done (tests, tools)."""
        thread = self._snapshot_thread
        if thread is not None:
            thread.join(timeout)

    def _load_nodes(self, session, ids) -> dict[int, dict]:
        import sys

        ci = ConfigurationItem
        out: dict[int, dict] = {}
        wanted = list(ids)
        columns = (ci.id, ci.name, ci.ci_class, ci.criticality, ci.owner_team_id, ci.status)
        if len(wanted) > 5 * _CHUNK:
            # Most of the estate: one scan beats thousands of IN lists.
            wanted_set = set(wanted)
            rows = (r for r in session.execute(select(*columns)) if r[0] in wanted_set)
        else:
            rows = (r for i in range(0, len(wanted), _CHUNK) for r in session.execute(
                _node_rows(), {"ids": wanted[i : i + _CHUNK]}
            ))  # fmt: skip
        intern = sys.intern
        clusters = []
        for cid, name, ci_class, criticality, team, status in rows:
            out[cid] = _node_data(name, intern(ci_class), intern(criticality), team, status=intern(status))
            if ci_class == "cluster":
                clusters.append(cid)
        for i in range(0, len(clusters), _CHUNK):
            for cid, attributes in session.execute(
                select(ci.id, ci.attributes).where(ci.id.in_(clusters[i : i + _CHUNK]))
            ):
                min_up = (attributes or {}).get("min_members_up")
                out[cid]["min_up"] = min_up if isinstance(min_up, int) and min_up > 0 else 1
        return out

    def _apply(self, session, rel_ids: set[int], ci_ids: set[int]) -> None:
        """Make the named relationships and CIs match their current rows."""
        with self._copy_lock:  # a snapshot writer copying this graph: wait for its copy (a second or so)
            self._apply_unguarded(session, rel_ids, ci_ids)

    def _apply_unguarded(self, session, rel_ids: set[int], ci_ids: set[int]) -> None:
        G, P = self.G, self.passive
        touched: set[int] = set()
        pairs: set[tuple[int, int]] = set()
        rows = []
        rel_list = list(rel_ids)
        for i in range(0, len(rel_list), _CHUNK):
            for pair, source, target, type_name in _pairs_and_their_open_relationships(
                session, rel_list[i : i + _CHUNK]
            ):
                pairs.add(pair)
                if source is not None:
                    rows.append((source, target, type_name))
                    if type_name not in self.types:
                        self.types = load_types(session)
        # Each linked pair as it is now: every open relationship between its two CIs, either way.
        forward, passive_types = _split_types(self.types)
        wanted: dict[tuple[int, int], set[str]] = {}  # (u, v) of G -> type names
        wanted_passive: dict[tuple[int, int], set[str]] = {}  # (source, target) -> type names
        for source, target, type_name in rows:
            if type_name in passive_types:
                wanted_passive.setdefault((source, target), set()).add(type_name)
            else:
                uv = (source, target) if type_name in forward else (target, source)
                wanted.setdefault(uv, set()).add(type_name)
        for a, b in pairs:
            for u, v in ((a, b), (b, a)):
                touched.update((u, v))
                _set_edge(G, u, v, wanted.get((u, v)))
                _set_edge(P, u, v, wanted_passive.get((u, v)))
                if (u, v) in wanted_passive:
                    _ensure_node(G, u)
                    _ensure_node(G, v)
        for n in touched:
            if n in G and any(MEMBER_OF in data for data in G._succ[n].values()):
                self.member_targets.add(n)
            else:
                self.member_targets.discard(n)
        # Node data: new ends, and CIs whose graph fields changed.
        reload = {n for n in touched if n in G and not G._node[n]} | {c for c in ci_ids if c in G}
        if reload:
            for cid, data in self._load_nodes(session, reload).items():
                G._node[cid].clear()
                G._node[cid].update(data)
                if "status" in data:
                    self.inactive.add(cid)
                else:
                    self.inactive.discard(cid)
        for n in touched:
            if n in P and not P._succ[n] and not P._pred[n]:
                P.remove_node(n)
            if n in G and not G._succ[n] and not G._pred[n] and n not in P:
                G.remove_node(n)
                self.member_targets.discard(n)
                self.inactive.discard(n)


def _set_edge(g: nx.DiGraph, u: int, v: int, type_names: set[str] | None) -> None:
    """Make edge ``u -> v`` of ``g`` carry exactly ``type_names`` (none: no edge)."""
    succ = g._succ
    if not type_names:
        if v in succ.get(u, ()):
            del succ[u][v]
            del g._pred[v][u]
        return
    data = edge_data(type_names)
    _ensure_node(g, u)
    _ensure_node(g, v)
    succ[u][v] = data
    g._pred[v][u] = data


def _pairs_and_their_open_relationships(session, rel_ids: list[int]) -> list[tuple]:
    """For the relationships ``rel_ids`` (open or ended): each one's pair of CIs (a, b), a < b, with
    every open relationship between them, either way, in one round trip (the refresh after a write
    waits for it): rows ((a, b), source, target, type), and ((a, b), None, None, None) for each pair."""
    return [
        (((a, b) if a < b else (b, a)), source, target, type_name)
        for a, b, source, target, type_name in session.execute(_pairs_statement(), {"ids": rel_ids})
    ]


@functools.cache
def _pairs_statement():
    """Built once: building it was most of a refresh's time (a few milliseconds)."""
    r = Relationship
    named = select(r.source_id, r.target_id).where(r.id.in_(bindparam("ids", expanding=True))).cte("named")
    found = r.__table__.alias("found")
    ways = [
        select(named.c.source_id, named.c.target_id, found.c.source_id, found.c.target_id, found.c.type)
        .join(found, (found.c.source_id == one) & (found.c.target_id == other))
        .where(found.c.valid_to.is_(None))
        for one, other in ((named.c.source_id, named.c.target_id), (named.c.target_id, named.c.source_id))
    ]
    bare = select(named.c.source_id, named.c.target_id, null(), null(), null())
    return union_all(*ways, bare)


def relationships_between(session, pairs) -> dict[tuple[int, int], list[tuple[int, int, int, str]]]:
    """The open relationships between the CIs of each pair (a, b), either way, by id:
    {(a, b): [(id, source_id, target_id, type), ...]} (what an answer naming relationships shows)."""
    pairs = list(dict.fromkeys(pairs))
    keys = list({k for a, b in pairs for k in ((a, b), (b, a))})
    r = Relationship
    found: dict[tuple[int, int], list] = {}
    for i in range(0, len(keys), _CHUNK):
        for rel_id, source, target, type_name in session.execute(
            select(r.id, r.source_id, r.target_id, r.type).where(
                tuple_(r.source_id, r.target_id).in_(keys[i : i + _CHUNK]), r.valid_to.is_(None)
            )
        ):
            found.setdefault((source, target), []).append((rel_id, source, target, type_name))
    out = {}
    for a, b in pairs:
        rows = found.get((a, b), []) + (found.get((b, a), []) if a != b else [])
        out[(a, b)] = sorted(rows)
    return out


def _fill(rows, types: dict[str, TypeInfo]):
    """(G, passive, member_targets) from (rel_id, source, target, type name) rows of the open
    relationships, node data left empty."""
    forward, passive_types = _split_types(types)
    one = {name: edge_data((name,)) for name in types}
    G, P = nx.DiGraph(), nx.DiGraph()
    succ, pred, node = G._succ, G._pred, G._node
    member_targets: set[int] = set()
    ids: dict[int, int] = {}
    intern = ids.setdefault  # one int object per CI: rows bring a new one for every mention
    # Filling networkx's adjacency dicts directly (as add_edge does, the edge's data dict shared by
    # both ends) instead of add_edges_from, which copies every data dict.
    for _rel_id, source, target, type_name in rows:
        source, target = intern(source, source), intern(target, target)
        if type_name in passive_types:
            _add_passive(P, G, source, target, type_name)
            continue
        u, v = (source, target) if type_name in forward else (target, source)
        su = succ.get(u)
        if su is None:
            su = succ[u] = {}
            pred[u] = {}
            node[u] = {}
        if v not in succ:
            succ[v] = {}
            pred[v] = {}
            node[v] = {}
        data = su.get(v)
        if data is None:
            data = one.get(type_name) or edge_data((type_name,))
        elif type_name in data:
            continue
        else:
            data = edge_data((*data, type_name))
        su[v] = data
        pred[v][u] = data
        if type_name == MEMBER_OF:
            member_targets.add(u)
    return G, P, member_targets


def _change_intact(session, change_id: int, at: datetime | None) -> bool:
    """False when change-log row ``change_id`` is gone or another one (a rollback)."""
    if change_id == 0:
        return True
    found = session.scalar(_change_at(), {"id": change_id})
    return found is not None and found == at


# The statements of a refresh, built once: on this kind of machine building a statement costs more
# than the database takes to answer it, and a refresh is what the next answer after a write waits for.
@functools.cache
def _changes_from():
    """The watermark's change-log row (of any type: a rebuild's watermark is the last row), then the
    graph's rows after it, in order; a range scan from the watermark on the primary key."""
    watermark = bindparam("watermark")
    return (
        select(
            ChangeLog.id,
            ChangeLog.object_type,
            ChangeLog.object_id,
            ChangeLog.action,
            ChangeLog.at,
            case((ChangeLog.object_type == "ci", ChangeLog.changes), else_=None),
        )
        .where(
            ChangeLog.id >= watermark,
            or_(ChangeLog.id == watermark, ChangeLog.object_type.in_(("relationship", "ci"))),
        )
        .order_by(ChangeLog.id)
        .limit(MAX_INCREMENT_ROWS + 2)
    )


@functools.cache
def _change_at():
    return select(ChangeLog.at).where(ChangeLog.id == bindparam("id"))


@functools.cache
def _node_rows():
    ci = ConfigurationItem
    columns = (ci.id, ci.name, ci.ci_class, ci.criticality, ci.owner_team_id, ci.status)
    return select(*columns).where(ci.id.in_(bindparam("ids", expanding=True)))


def _unusable(session, snap: snapshot.Snapshot, version: int, types: dict[str, TypeInfo]) -> str | None:
    """Why a snapshot must not be restored on this database, or None."""
    if snap.code != graph_code_fingerprint():
        return "written by another version of the graph code"
    if snap.version > version:
        return f"its graph version {snap.version} is ahead of the database's {version} (rolled back, or restored)"
    if snap.schema != _schema_revision(session):
        return "the database was migrated since"
    if any(types.get(fields["name"]) != _type_info(fields) for fields in snap.types):
        return "the relationship types changed"
    if any(name in types for name in snap.type_names[len(snap.types) :]):
        return "the relationship types changed"
    if not _change_intact(session, snap.watermark, snap.watermark_at):
        return f"its change-log watermark {snap.watermark} is gone or another row (rolled back)"
    return None


def _schema_revision(session) -> str:
    """The database's Alembic revisions ("" without the table): a migration may change relationships
    or CIs without a change-log row, so a snapshot from before it is not restored."""
    from sqlalchemy import inspect, text

    connection = session.connection()
    if not inspect(connection).has_table("alembic_version"):
        return ""
    return ",".join(sorted(connection.execute(text("SELECT version_num FROM alembic_version")).scalars()))


_fingerprint: str | None = None


def graph_code_fingerprint() -> str:
    """A hash of the modules that decide what the graph holds (this one, the snapshot format, the
    relationship types, the lifecycle's inactive statuses): a snapshot written by other code, a
    release ago or by another host in a rolling deploy, is not restored."""
    global _fingerprint
    if _fingerprint is None:
        import hashlib

        from cmdb import lifecycle
        from relations import types

        digest = hashlib.blake2b(digest_size=8)
        for module in (sys.modules[__name__], snapshot, types, lifecycle):
            digest.update(Path(module.__file__).read_bytes())
        _fingerprint = digest.hexdigest()
    return _fingerprint


def _add_passive(P: nx.DiGraph, G: nx.DiGraph, source: int, target: int, type_name: str) -> None:
    """Record an impact-less relationship in ``P``; its ends become (maybe edgeless) nodes of ``G``,
    where every node's data lives."""
    data = P._succ.get(source, {}).get(target)
    if data is None:
        P.add_edge(source, target)  # a fresh empty dict, replaced below
    elif type_name in data:
        return
    data = edge_data((*(data or ()), type_name))
    P._succ[source][target] = data
    P._pred[target][source] = data
    _ensure_node(G, source)
    _ensure_node(G, target)


def _ensure_node(g: nx.DiGraph, n: int) -> None:
    """Add CI ``n`` to ``g`` unless it is there: no edges, its data filled in by the caller (as
    ``add_node`` does, without its checks, so that the node is in every adjacency dict at once)."""
    if n not in g._node:
        g._succ[n], g._pred[n], g._node[n] = {}, {}, {}


# One graph per database URL in this process (tests and tools may open more than one app).
_graphs: dict[str, LiveGraph] = {}
_graphs_lock = threading.Lock()


def _graph_for_engine() -> LiveGraph:
    key = str(db.engine.url)
    graph = _graphs.get(key)
    if graph is None:
        with _graphs_lock:
            graph = _graphs.get(key)
            if graph is None:
                graph = _graphs[key] = LiveGraph()
                target = snapshot_target()
                if target is not None:
                    graph.snapshot_path, graph.database_key = target
    return graph


def snapshot_target() -> tuple[Path, str] | None:
    """(the current database's snapshot file, its database key), or None when snapshots are off.
    ``CAIRN_GRAPH_SNAPSHOT_DIR``: unset or empty, the app's instance path; ``off``: no snapshots."""
    from flask import current_app

    directory = setting("CAIRN_GRAPH_SNAPSHOT_DIR", "").strip()
    if directory.lower() == "off":
        return None
    key = snapshot.database_key(db.engine.url)
    return snapshot.path_for(directory or current_app.instance_path, key), key


def build_snapshot(session=None) -> tuple[LiveGraph, snapshot.Capture]:
    """Rebuild the current database's graph from the tables and copy it for a snapshot (``cairn graph
    snapshot``, benchmarks): ``capture.finish()`` is the snapshot, for ``relations.snapshot.write``.
    On PostgreSQL the rebuild holds graph writers off until the transaction ends: end it first."""
    session = session or db.session
    graph = LiveGraph()
    target = snapshot_target()
    graph.database_key = target[1] if target else snapshot.database_key(db.engine.url)
    graph._rebuild(session)
    tags = graph.snapshot_tags(session)
    return graph, snapshot.capture(graph.G, graph.passive, graph.member_targets, list(graph.types), **tags)


@contextmanager
def live_graph(session=None, seen: tuple[int, int] | None = None):
    """The fresh graph of the current database, locked for reading: ``with live_graph() as g:``.
    ``seen``: the (version, stamp) the asker read from the database just before (the graph host's
    questions): a graph already there needs no read of its own."""
    session = session or db.session
    graph = _graph_for_engine()
    with graph.lock:
        if seen is None or not graph.built or (graph.version, graph.stamp) != tuple(seen):
            graph.ensure_fresh(session)
        yield graph


def forget_graphs() -> None:
    """Drop every cached graph, and the impact answers computed on them (tests, or after a restore)."""
    with _graphs_lock:
        _graphs.clear()
    answers.forget()


def graph_stats() -> dict:
    graph = _graph_for_engine()
    return {
        "built": graph.built,
        "version": graph.version,
        "nodes": graph.G.number_of_nodes(),
        "edges": graph.G.number_of_edges(),
        "passive_edges": graph.passive.number_of_edges(),
        "inactive": len(graph.inactive),
        "snapshot_path": str(graph.snapshot_path) if graph.snapshot_path is not None else None,
        **graph.stats,
    }
