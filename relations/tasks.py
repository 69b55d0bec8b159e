"""Periodic work of the relations domain (declared in cairn.jobs.schedule)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from cairn.audit.models import ChangeLog
from cairn.db import db
from cairn.errors import Invalid
from cairn.uow import checkpoint
from relations import graphd, snapshot
from relations.graph import MAX_INCREMENT_ROWS, build_snapshot, snapshot_target

log = logging.getLogger("cairn.relations.tasks")

# A snapshot further behind the change log than this is rewritten: a process starting from it
# would catch up through this many rows, and past MAX_INCREMENT_ROWS it would rebuild instead.
SNAPSHOT_MAX_BEHIND = MAX_INCREMENT_ROWS // 2


@dataclass
class SnapshotWritten:
    path: str
    size: int
    nodes: int
    edges: int
    version: int
    watermark: int
    build_s: float
    write_s: float


def write_graph_snapshot() -> SnapshotWritten | None:
    """Rebuild the current database's graph from the tables and write its snapshot file (None when
    snapshots are off). Ends the caller's transaction after the rebuild: on PostgreSQL the rebuild
    holds graph writers off until then. Raises OSError or relations.snapshot.SnapshotError."""
    target = snapshot_target()
    if target is None:
        return None
    path = graphd.socket_path()
    if path:
        try:
            return SnapshotWritten(**graphd.ask(path, "write_hosted_snapshot"))
        except graphd.HostUnavailable as exc:
            log.warning("graph host unavailable (%s): the snapshot job rebuilds the graph itself", exc)
    started = time.perf_counter()
    _, kept = build_snapshot()
    built = time.perf_counter() - started
    checkpoint()
    started = time.perf_counter()
    snap = kept.finish()
    size = snapshot.write(target[0], snap)
    return SnapshotWritten(
        str(target[0]), size, snap.nodes, snap.edges, snap.version, snap.watermark, built,
        time.perf_counter() - started,
    )  # fmt: skip


@graphd.hosted
def write_hosted_snapshot() -> dict:
    """On the graph host (asked by the hourly job): write the snapshot of the graph it holds, a
    copy taken under its lock, instead of a job worker rebuilding a graph of its own for it."""
    from relations.graph import live_graph

    started = time.perf_counter()
    with live_graph() as graph:
        if graph.snapshot_path is None:
            raise Invalid("The graph host keeps no snapshots (CAIRN_GRAPH_SNAPSHOT_DIR is off there).")
        tags = graph.snapshot_tags(db.session)
        kept = snapshot.capture(graph.G, graph.passive, graph.member_targets, list(graph.types), **tags)
        target, write_lock = graph.snapshot_path, graph._snapshot_lock
    copied = time.perf_counter() - started
    started = time.perf_counter()
    snap = kept.finish()
    with write_lock:
        size = snapshot.write(target, snap)
    return dict(
        path=str(target), size=size, nodes=snap.nodes, edges=snap.edges, version=snap.version,
        watermark=snap.watermark, build_s=copied, write_s=time.perf_counter() - started,
    )  # fmt: skip


def _rows_behind(watermark: int, limit: int) -> int:
    """Change-log rows a process would read to catch up from ``watermark`` (at most ``limit + 1``)."""
    behind = (
        select(ChangeLog.id)
        .where(ChangeLog.id > watermark, ChangeLog.object_type.in_(("relationship", "ci")))
        .limit(limit + 1)
        .subquery()
    )
    return db.session.scalar(select(func.count()).select_from(behind))


def refresh_graph_snapshot(max_behind: int = SNAPSHOT_MAX_BEHIND) -> str:
    """Keep the graph snapshot close to the change log (hourly): rewrite it when it is missing,
    unreadable, or more than ``max_behind`` change-log rows behind, so that a process starting from
    it catches up in one increment instead of rebuilding. Snapshots are otherwise only written after
    a full rebuild, so without this they age while every process stays up."""
    target = snapshot_target()
    if target is None:
        return "off"
    try:
        header = snapshot.header_of(target[0].read_bytes())
        watermark = int(header["watermark"])
    except (OSError, snapshot.SnapshotError, KeyError, TypeError, ValueError):
        watermark = None
    if watermark is not None and _rows_behind(watermark, max_behind) <= max_behind:
        return "fresh"
    written = write_graph_snapshot()
    log.info("graph snapshot rewritten", extra={"path": written.path, "bytes": written.size})
    return "written"
