"""The graph snapshot file: a process restores its dependency graph from it at first use instead of
rebuilding it from the tables (see ``relations.graph``), then catches up from the change log.

It holds a rebuilt graph as the rebuild left it, tagged with the graph version, stamp and change-log
watermark the rebuild stood at: for ``G`` and for the passive graph, the nodes in order and, per
node, its successors (as indexes of those nodes) with each edge's set of relationship types (an
index into the header's table of type sets), in dict order (the predecessors are the same edges
seen from their other end: a restore derives them);
the node data of ``G`` as columns; the clusters (``member_targets``). A restore builds the same dicts
(successors in the same order), with each CI id one int object and each edge's data the shared dict of its
type set (``relations.graph.edge_data``), mostly with C-level comprehensions (no per-edge Python loop).

The format is our own and holds data only (a pickle could run code when loaded)::

    magic "CAIRNGRF" | u32 little-endian header length | header (JSON) | payload | blake2b-128 digest

The header carries the format version, the database key, the graph version, stamp, watermark id and
time, the schema revision and graph-code fingerprint the snapshot is valid for, the relationship
types, the type sets, the string tables and the layout of the payload: zlib-compressed little-endian integer
arrays (each as narrow as its values allow) and the CI names, NUL-joined UTF-8. The digest covers
everything before it. A file that is short, foreign, of another format version, of another
database, or inconsistent in any length, index or edge is refused (``SnapshotError``); the caller
rebuilds from the tables instead.

Files are written to a temporary file in the same directory, fsynced and renamed over the old one
(``os.replace``), mode 0600: a reader sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import tempfile
import time
import zlib
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from operator import methodcaller
from pathlib import Path

import networkx as nx
from sqlalchemy.engine import make_url

MAGIC = b"CAIRNGRF"
FORMAT_VERSION = 2
_HEADER_LEN = struct.Struct("<I")
_DIGEST_BYTES = 16
_MAX_HEADER_BYTES = 16 * 1024 * 1024
# Signed typecodes by width; "i" is 4 bytes and "q" 8 on every platform CPython supports.
_TYPECODES = ("b", "h", "i", "q")
_ITEMSIZE = {"b": 1, "h": 2, "i": 4, "q": 8}
_LITTLE = sys.byteorder == "little"

# The keys node data may hold (see relations.graph._node_data); one bit each in a node's mask.
NODE_KEYS = ("name", "ci_class", "criticality", "owner_team_id", "min_up", "status")
_BIT = {key: 1 << i for i, key in enumerate(NODE_KEYS)}
_MISSING = object()
NO_TEAM = -1  # owner_team_id None (ids are positive)
# One adjacency (G, or the passive graph): per node, then per (node, successor) pair.
ADJACENCY_BLOCKS = ("nodes", "succ_counts", "targets", "pair_types")
NODE_BLOCKS = ("mask", "ci_class", "criticality", "owner_team_id", "min_up", "status")
BLOCKS = (
    *(f"g.{b}" for b in ADJACENCY_BLOCKS),
    *(f"p.{b}" for b in ADJACENCY_BLOCKS),
    *(f"node.{b}" for b in NODE_BLOCKS),
    "member_targets",
)


class SnapshotError(ValueError):
    """A snapshot that cannot be written or must not be used."""


def database_key(url) -> str:
    """Which database a snapshot belongs to: a hash of its URL without the password."""
    url = make_url(url) if isinstance(url, str) else url
    text = url.render_as_string(hide_password=True)  # the password as ***, whatever it is
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def path_for(directory: str | os.PathLike, key: str) -> Path:
    return Path(directory) / f"graph-{key}.snapshot"


@dataclass
class Snapshot:
    """A graph as a snapshot holds it: tags, then arrays (see ``BLOCKS``)."""

    database: str
    version: int
    stamp: int
    watermark: int
    watermark_at: datetime | None
    # TypeInfo fields (name, label, reverse_label, impact, source_classes, target_classes), table order
    types: list[dict]
    # Relationship type index -> name: the types above, then any other name an edge carries.
    type_names: list[str]
    # Type set index -> the type names (as indexes) of an edge: what "pair_types" blocks point at.
    type_sets: list[list[int]]
    # "g.nodes", ... "member_targets": integer arrays; the node columns as tables' indexes.
    blocks: dict[str, array]
    names: list[str]  # per node of G ("" where the data has no name)
    tables: dict[str, list]  # ci_class, criticality, status: index -> value (None allowed)
    # The database's migration revisions and a fingerprint of the code that decides what the graph
    # holds: a snapshot from before a migration or a release that changed either is not restored.
    schema: str = ""
    code: str = ""
    written_at: str = ""

    @property
    def nodes(self) -> int:
        return len(self.blocks["g.nodes"])

    @property
    def edges(self) -> int:
        """Linked pairs held (edges of G and of the passive graph)."""
        return len(self.blocks["g.targets"]) + len(self.blocks["p.targets"])

    # -- building the graph
    def graph(self) -> tuple[nx.DiGraph, nx.DiGraph, set[int]]:
        """(G, passive, member_targets): the dicts the snapshotted graph had, the nodes and each
        node's successors in their order. SnapshotError when the arrays do not make a consistent graph."""
        from relations.graph import edge_data  # the graph's own shared edge data (it imports this module)

        try:
            sets = [edge_data(self.type_names[i] for i in names) for names in self.type_sets]
            G = _digraph(self.blocks, "g", sets, self._node_data())
            P = _digraph(self.blocks, "p", sets, None)
        except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
            raise SnapshotError(f"inconsistent graph: {exc!r}") from exc
        if not P._node.keys() <= G._node.keys():
            raise SnapshotError("inconsistent graph: a passive end is not a node")
        member_targets = set(self.blocks["member_targets"])
        if not member_targets <= G._node.keys():
            raise SnapshotError("inconsistent graph: a cluster is not a node")
        return G, P, member_targets

    def _node_data(self) -> list[dict]:
        b, t = self.blocks, self.tables
        classes, crits, statuses = t["ci_class"], t["criticality"], t["status"]
        common = _BIT["name"] | _BIT["ci_class"] | _BIT["criticality"] | _BIT["owner_team_id"]
        out = []
        append = out.append
        for mask, name, ci_class, crit, team, min_up, status in zip(
            b["node.mask"], self.names, b["node.ci_class"], b["node.criticality"], b["node.owner_team_id"],
            b["node.min_up"], b["node.status"], strict=True,
        ):  # fmt: skip
            team = None if team == NO_TEAM else team
            if mask & common == common:  # every CI: one literal, then the optional keys
                data = {"name": name, "ci_class": classes[ci_class], "criticality": crits[crit], "owner_team_id": team}
                if mask & _BIT["min_up"]:
                    data["min_up"] = min_up
                if mask & _BIT["status"]:
                    data["status"] = statuses[status]
            else:  # a node without its CI row (empty data), or anything else: key by key
                values = (name, classes[ci_class], crits[crit], team, min_up, statuses[status])
                data = {key: value for key, value in zip(NODE_KEYS, values, strict=True) if mask & _BIT[key]}
            append(data)
        return out


def _digraph(blocks: dict[str, array], prefix: str, sets: list[dict], node_data: list[dict] | None) -> nx.DiGraph:
    import numpy as np

    def block(name: str) -> array:
        return blocks[f"{prefix}.{name}"]

    succ_counts, pair_types, target_indexes = block("succ_counts"), block("pair_types"), block("targets")
    nodes = block("nodes").tolist()
    n_nodes, n_pairs = len(nodes), len(target_indexes)
    if not (
        len(succ_counts) == n_nodes
        and len(pair_types) == n_pairs
        and sum(succ_counts) == n_pairs
        and (node_data is None or len(node_data) == n_nodes)
    ):
        raise SnapshotError(f"{prefix}: counts disagree")
    if len(set(nodes)) != n_nodes:
        raise SnapshotError(f"{prefix}: a node appears twice")
    if n_pairs and (min(target_indexes) < 0 or max(target_indexes) >= n_nodes or min(succ_counts) < 0):
        raise SnapshotError(f"{prefix}: an index out of range")
    # Each CI id is one int object wherever the graph names it, and each edge's data the shared dict
    # of its type set: both are picked by index from object arrays (numpy, in C). Predecessors are
    # the same edges ordered by their target; both sides are then built alike.
    node_objects = np.empty(n_nodes, dtype=object)
    node_objects[:] = nodes
    set_objects = np.empty(len(sets), dtype=object)
    for i, data in enumerate(sets):
        set_objects[i] = data  # one by one: numpy would take a dict in a list for a sequence
    targets = np.frombuffer(target_indexes, dtype=target_indexes.typecode).astype(np.intp)
    types = np.frombuffer(pair_types, dtype=pair_types.typecode).astype(np.intp)
    counts = np.frombuffer(succ_counts, dtype=succ_counts.typecode).astype(np.intp)
    sources = np.repeat(np.arange(n_nodes, dtype=np.intp), counts)
    by_target = np.argsort(targets, kind="stable")
    succ = _adjacency(nodes, counts, node_objects[targets], set_objects[types])
    pred = _adjacency(nodes, np.bincount(targets, minlength=n_nodes), node_objects[sources[by_target]],
                      set_objects[types[by_target]])  # fmt: skip
    if sum(map(len, succ.values())) != n_pairs:
        raise SnapshotError(f"{prefix}: an edge appears twice")
    G = nx.DiGraph()
    # networkx supports setting these (its descriptors keep _adj the same dict as _succ).
    G._succ = succ
    G._pred = pred
    G._node = dict(zip(nodes, node_data, strict=True)) if node_data is not None else {n: {} for n in nodes}
    return G


def _adjacency(nodes: list[int], counts, neighbours, datas) -> dict[int, dict]:
    """{node: {neighbour: edge data}} from per-node counts and per-edge object arrays of the
    neighbours and the edge data, in the order the dicts are to have."""
    import numpy as np

    ends = np.cumsum(counts).tolist()
    starts = [0, *ends[:-1]] if ends else []
    linked, datas = neighbours.tolist(), datas.tolist()
    # slices of equal lengths, a node each (the counts were checked against the arrays)
    return {n: dict(zip(linked[a:z], datas[a:z])) for n, a, z in zip(nodes, starts, ends, strict=True)}  # noqa: B905


# ---------------------------------------------------------------------------------------------
# Copying a graph (while nothing changes it: C-level copies only) and finishing the copy (any time)


@dataclass
class Capture:
    """A private copy of what a snapshot holds: lists of ints and strings, the edges' data dicts (shared
    and never changed in place) and copies of the node data dicts, so the graph may change once it is
    taken. ``finish`` makes the snapshot."""

    adjacency: dict[str, dict]
    node_data: list[dict]
    member_targets: list[int]
    type_names: list[str]
    tags: dict = field(default_factory=dict)

    def finish(self) -> Snapshot:
        """The snapshot (validating every value); SnapshotError for what the format cannot hold."""
        try:
            return _finish(self)
        except SnapshotError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise SnapshotError(f"cannot hold this graph: {exc!r}") from exc


def capture(G: nx.DiGraph, P: nx.DiGraph, member_targets, type_names, **tags) -> Capture:
    """Copy what a snapshot needs out of the graph, which nothing may change meanwhile (C-level
    iteration and dict copies only: this is the part that keeps increments waiting). ``tags``:
    database, version, stamp, watermark, watermark_at, types, schema, code."""
    if any(P._node.values()):
        raise SnapshotError("a passive node has data")
    return Capture(
        adjacency={"g": _copy_adjacency(G), "p": _copy_adjacency(P)},
        node_data=list(map(dict.copy, G._node.values())),
        member_targets=list(member_targets),
        type_names=list(type_names),
        tags=tags,
    )


def _copy_adjacency(g: nx.DiGraph) -> dict:
    succ, pred, node = g._succ, g._pred, g._node
    nodes = list(succ)
    if not (len(nodes) == len(pred) == len(node) and nodes == list(pred) == list(node)):
        raise SnapshotError("the graph's node dicts disagree")
    return {
        "nodes": nodes,
        "succ_counts": list(map(len, succ.values())),
        "targets": list(chain.from_iterable(succ.values())),
        "pairs": list(chain.from_iterable(map(dict.values, succ.values()))),
    }


def _finish_adjacency(a: dict, tindex: dict[str, int], type_names: list[str], set_index: dict) -> dict[str, array]:
    nodes, pairs = a["nodes"], a["pairs"]
    position = dict(zip(nodes, range(len(nodes)), strict=True))
    target_indexes = list(map(position.__getitem__, a["targets"]))  # KeyError: a successor is not a node
    # Edge data dicts are shared: each distinct one is looked at once (by identity), then indexed.
    by_object = {id(data): data for data in pairs}
    object_set = {}
    for key, data in by_object.items():
        if not data or any(type(name) is not str or data[name] != name for name in data):
            raise SnapshotError("an edge's data is not a set of relationship type names")
        for name in data:
            if name not in tindex:
                tindex[name] = len(type_names)
                type_names.append(name)
        names = tuple(sorted(tindex[name] for name in data))
        object_set[key] = set_index.setdefault(names, len(set_index))
    return {
        "nodes": array("q", nodes),
        "succ_counts": array("q", a["succ_counts"]),
        "targets": array("q", target_indexes),
        "pair_types": array("q", list(map(object_set.__getitem__, map(id, pairs)))),
    }


def _finish(cap: Capture) -> Snapshot:
    type_names = list(cap.type_names)
    tindex = {name: i for i, name in enumerate(type_names)}
    blocks: dict[str, array] = {}
    set_index: dict[tuple[int, ...], int] = {}
    for prefix, adjacency in cap.adjacency.items():
        for name, values in _finish_adjacency(adjacency, tindex, type_names, set_index).items():
            blocks[f"{prefix}.{name}"] = values
    node_data = cap.node_data
    keys = set(chain.from_iterable(node_data))
    if not keys <= set(NODE_KEYS):
        raise SnapshotError(f"node data holds {sorted(keys - set(NODE_KEYS))}")
    c = {key: list(map(methodcaller("get", key, _MISSING), node_data)) for key in NODE_KEYS}
    missing = _MISSING
    masks = array("q", [0] * len(node_data))
    for key in NODE_KEYS:
        bit = _BIT[key]
        for i, value in enumerate(c[key]):
            if value is not missing:
                masks[i] |= bit
    names = ["" if v is missing else v for v in c["name"]]
    if not all(type(v) is str for v in names):
        raise SnapshotError("a CI name is not text")
    teams = [NO_TEAM if v is missing or v is None else v for v in c["owner_team_id"]]
    if not all(type(v) is int and v >= 0 for v in teams if v != NO_TEAM):
        raise SnapshotError("an owner team id is not a non-negative integer")
    min_ups = [0 if v is missing else v for v in c["min_up"]]
    if not all(type(v) is int for v in min_ups):
        raise SnapshotError("a cluster's min_up is not an integer")
    tables = {}
    for key in ("ci_class", "criticality", "status"):
        values = [None if v is missing else v for v in c[key]]
        if not all(v is None or type(v) is str for v in values):
            raise SnapshotError(f"a CI's {key} is not text")
        tables[key], blocks[f"node.{key}"] = _table(values)
    blocks["node.mask"] = masks
    blocks["node.owner_team_id"] = array("q", teams)
    blocks["node.min_up"] = array("q", min_ups)
    blocks["member_targets"] = array("q", cap.member_targets)
    t = cap.tags
    return Snapshot(
        database=t["database"],
        version=t["version"],
        stamp=t["stamp"],
        watermark=t["watermark"],
        watermark_at=t["watermark_at"],
        types=t["types"],
        type_names=type_names,
        type_sets=[list(names) for names in set_index],
        blocks={name: blocks[name] for name in BLOCKS},
        names=names,
        tables=tables,
        schema=t.get("schema", ""),
        code=t.get("code", ""),
    )


def _table(values) -> tuple[list, array]:
    """(distinct values in order of appearance, index of each value)."""
    index: dict = {}
    indexes = array("q", (index.setdefault(v, len(index)) for v in values))
    return list(index), indexes


# ---------------------------------------------------------------------------------------------
# Encoding


def _narrow(values: array) -> array:
    if not values:
        return array("b")
    lo, hi = min(values), max(values)
    for code in _TYPECODES:
        bits = 8 * _ITEMSIZE[code] - 1
        if -(1 << bits) <= lo and hi < (1 << bits):
            return values if code == values.typecode else array(code, values)
    raise SnapshotError("an integer does not fit in 64 bits")


def encode(snap: Snapshot, level: int = 1) -> bytes:
    """The file's bytes. Raises SnapshotError for what the format cannot hold."""
    try:
        return _encode(snap, level)
    except SnapshotError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise SnapshotError(f"cannot encode the graph: {exc}") from exc


def _encode(snap: Snapshot, level: int) -> bytes:
    joined = "\x00".join(snap.names)
    if snap.names and joined.count("\x00") != len(snap.names) - 1:
        raise SnapshotError("a CI name holds a NUL character")
    if list(snap.blocks) != list(BLOCKS):
        raise SnapshotError("unexpected blocks")
    layout, parts = [], []
    for name, values in snap.blocks.items():
        values = _narrow(values)
        if not _LITTLE:
            values = array(values.typecode, values)
            values.byteswap()
        layout.append([name, values.typecode, len(values)])
        parts.append(values.tobytes())
    names_bytes = joined.encode("utf-8")
    layout.append(["names", "utf-8", len(names_bytes)])
    parts.append(names_bytes)
    raw = b"".join(parts)
    payload = zlib.compress(raw, level)
    header = {
        "format": FORMAT_VERSION,
        "database": snap.database,
        "version": snap.version,
        "stamp": snap.stamp,
        "watermark": snap.watermark,
        "watermark_at": snap.watermark_at.isoformat() if snap.watermark_at is not None else None,
        "schema": snap.schema,
        "code": snap.code,
        "types": snap.types,
        "type_names": snap.type_names,
        "type_sets": snap.type_sets,
        "tables": snap.tables,
        "nodes": len(snap.names),
        "blocks": layout,
        "compression": "zlib",
        "raw_bytes": len(raw),
        "payload_bytes": len(payload),
        "written_at": snap.written_at or datetime.now().astimezone().isoformat(),
    }
    header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    head = MAGIC + _HEADER_LEN.pack(len(header_bytes)) + header_bytes
    digest = hashlib.blake2b(head, digest_size=_DIGEST_BYTES)
    digest.update(payload)
    return b"".join((head, payload, digest.digest()))


# ---------------------------------------------------------------------------------------------
# Decoding


def decode(data: bytes, database: str | None = None) -> Snapshot:
    """The snapshot in ``data``; raises SnapshotError unless every check holds."""
    try:
        return _decode(memoryview(data), database)
    except SnapshotError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, OverflowError, RecursionError, zlib.error) as exc:
        raise SnapshotError(f"malformed snapshot: {exc!r}") from exc


def header_of(data: bytes) -> dict:
    """The header alone (checked for magic and length only): for tools and benchmarks."""
    fixed = len(MAGIC) + _HEADER_LEN.size
    if bytes(data[: len(MAGIC)]) != MAGIC:
        raise SnapshotError("not a graph snapshot (magic)")
    (header_len,) = _HEADER_LEN.unpack_from(data, len(MAGIC))
    return json.loads(bytes(data[fixed : fixed + header_len]))


def _decode(data: memoryview, database: str | None) -> Snapshot:
    fixed = len(MAGIC) + _HEADER_LEN.size
    if len(data) < fixed + _DIGEST_BYTES or bytes(data[: len(MAGIC)]) != MAGIC:
        raise SnapshotError("not a graph snapshot (magic)")
    (header_len,) = _HEADER_LEN.unpack_from(data, len(MAGIC))
    if header_len > _MAX_HEADER_BYTES or fixed + header_len + _DIGEST_BYTES > len(data):
        raise SnapshotError("truncated (header)")
    body_end = len(data) - _DIGEST_BYTES
    digest = hashlib.blake2b(data[:body_end], digest_size=_DIGEST_BYTES).digest()
    if digest != bytes(data[body_end:]):
        raise SnapshotError("checksum mismatch (truncated or corrupted)")
    header = json.loads(bytes(data[fixed : fixed + header_len]))
    if not isinstance(header, dict):
        raise SnapshotError("header is not an object")
    if header.get("format") != FORMAT_VERSION:
        raise SnapshotError(f"format version {header.get('format')!r}, this process reads {FORMAT_VERSION}")
    if database is not None and header.get("database") != database:
        raise SnapshotError("written for another database")
    if header.get("compression") != "zlib":
        raise SnapshotError(f"unknown compression {header.get('compression')!r}")
    payload = data[fixed + header_len : body_end]
    if len(payload) != header["payload_bytes"]:
        raise SnapshotError("payload length mismatch")
    raw_bytes = _count(header["raw_bytes"])
    inflater = zlib.decompressobj()
    raw = inflater.decompress(payload, raw_bytes + 1)  # never (much) more than announced
    if len(raw) != raw_bytes or inflater.unconsumed_tail or not inflater.eof:
        raise SnapshotError("payload size mismatch")
    types = header["types"]
    type_names = _strings(header["type_names"])
    if not isinstance(types, list) or not all(_is_type(t) for t in types):
        raise SnapshotError("bad relationship types")
    if [t["name"] for t in types] != type_names[: len(types)] or len(set(type_names)) != len(type_names):
        raise SnapshotError("types and type names disagree")
    type_sets = header["type_sets"]
    if not isinstance(type_sets, list) or not all(
        isinstance(names, list)
        and names
        and len(set(names)) == len(names)
        and all(type(i) is int and 0 <= i < len(type_names) for i in names)
        for names in type_sets
    ):
        raise SnapshotError("bad type sets")
    tables = header["tables"]
    if not isinstance(tables, dict) or sorted(tables) != ["ci_class", "criticality", "status"]:
        raise SnapshotError("bad string tables")
    for values in tables.values():
        if not isinstance(values, list) or not all(v is None or isinstance(v, str) for v in values):
            raise SnapshotError("bad string tables")
    intern = sys.intern
    tables = {key: [intern(v) if v is not None else None for v in values] for key, values in tables.items()}
    layout = header["blocks"]
    if [b[0] for b in layout] != [*BLOCKS, "names"]:
        raise SnapshotError("unexpected block layout")
    raw_view = memoryview(raw)
    blocks: dict[str, array] = {}
    offset = 0
    for name, code, count in layout[:-1]:
        count = _count(count)
        if code not in _ITEMSIZE or array(code).itemsize != _ITEMSIZE[code]:
            raise SnapshotError(f"block {name}: typecode {code!r}")
        size = count * _ITEMSIZE[code]
        if offset + size > len(raw):
            raise SnapshotError(f"block {name}: truncated")
        values = array(code)
        values.frombytes(raw_view[offset : offset + size])
        if not _LITTLE:
            values.byteswap()
        offset += size
        blocks[name] = values
    _, code, count = layout[-1]
    if code != "utf-8" or offset + _count(count) != len(raw):
        raise SnapshotError("names: bad length")
    n_nodes = _count(header["nodes"])
    names = bytes(raw_view[offset:]).decode("utf-8").split("\x00") if n_nodes else []
    if len(names) != n_nodes or (not n_nodes and count) or len(blocks["g.nodes"]) != n_nodes:
        raise SnapshotError("names count mismatch")
    for name in NODE_BLOCKS:
        if len(blocks[f"node.{name}"]) != n_nodes:
            raise SnapshotError(f"block node.{name}: wrong length")
    for prefix in ("g", "p"):
        _within(blocks[f"{prefix}.pair_types"], 0, len(type_sets), f"{prefix}.pair_types")
        _within(blocks[f"{prefix}.succ_counts"], 0, None, f"{prefix}.succ_counts")
        _within(blocks[f"{prefix}.targets"], 0, len(blocks[f"{prefix}.nodes"]), f"{prefix}.targets")
    for key in ("ci_class", "criticality", "status"):
        _within(blocks[f"node.{key}"], 0, len(tables[key]), f"node.{key}")
    _within(blocks["node.mask"], 0, 1 << len(NODE_KEYS), "node.mask")
    _within(blocks["node.owner_team_id"], NO_TEAM, None, "node.owner_team_id")
    watermark_at = header["watermark_at"]
    return Snapshot(
        database=_string(header["database"]),
        version=_int(header["version"]),
        stamp=_int(header["stamp"]),
        watermark=_count(header["watermark"]),
        watermark_at=datetime.fromisoformat(watermark_at) if watermark_at is not None else None,
        types=types,
        type_names=type_names,
        type_sets=type_sets,
        blocks=blocks,
        names=names,
        tables=tables,
        schema=_string(header["schema"]),
        code=_string(header["code"]),
        written_at=str(header.get("written_at", "")),
    )


_TYPE_KEYS = {"name": str, "label": str, "reverse_label": str, "impact": str, "source_classes": list,
              "target_classes": list}  # fmt: skip


def _is_type(value) -> bool:
    return (
        isinstance(value, dict)
        and value.keys() == _TYPE_KEYS.keys()
        and all(isinstance(value[k], kind) for k, kind in _TYPE_KEYS.items())
        and all(isinstance(c, str) for c in (*value["source_classes"], *value["target_classes"]))
    )


def _int(value) -> int:
    if type(value) is not int:
        raise SnapshotError(f"{value!r} is not an integer")
    return value


def _count(value) -> int:
    if _int(value) < 0:
        raise SnapshotError(f"{value!r} is negative")
    return value


def _string(value) -> str:
    if not isinstance(value, str):
        raise SnapshotError(f"{value!r} is not text")
    return value


def _strings(values) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise SnapshotError("a string table is not a list of strings")
    return values


def _within(values: array, lo: int, hi: int | None, name: str) -> None:
    if values and (min(values) < lo or (hi is not None and max(values) >= hi)):
        raise SnapshotError(f"block {name}: value out of range")


# ---------------------------------------------------------------------------------------------
# Files


def write(path: str | os.PathLike, snap: Snapshot) -> int:
    """Encode and write atomically (temporary file, fsync, rename; mode 0600). Returns the size."""
    return write_bytes(path, encode(snap))


def write_bytes(path: str | os.PathLike, data: bytes) -> int:
    """Write an encoded snapshot atomically (temporary file, fsync, rename; mode 0600)."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _sweep_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return len(data)


def _sweep_stale_temporaries(path: Path, older_than_s: float = 600) -> None:
    """Temporary files of writers that died mid-write (a killed worker) are removed after ten minutes
    (a write takes seconds)."""
    now = time.time()
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
        except OSError:
            pass


def read(path: str | os.PathLike, database: str | None = None) -> Snapshot | None:
    """The snapshot at ``path``, None when there is none; SnapshotError when it must not be used."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotError(f"not readable: {exc}") from exc
    return decode(data, database)
