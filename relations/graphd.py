"""One graph per host: ``cairn graphd`` keeps the dependency graph once for every process of a host.

Without it, every process that answers a graph question (each gunicorn worker, each ``cairn
worker``) keeps its own copy of the graph (relations.graph), and at a million CIs that copy weighs
gigabytes and takes seconds to load. With ``CAIRN_GRAPHD_SOCKET`` set, the graph questions of
relations.services (the functions wrapped with ``hosted``: impact and dependencies, paths, single
points of failure, cycles, neighbourhoods, cluster health) are asked of the graph host listening on
that Unix socket. The host keeps the one graph, restored from the snapshot and kept fresh from the
change log exactly as a process keeps its own, and answers there; the asking process keeps only its
cache of impact answers (relations.answers), so paging through a large answer asks the host once.
Why a process and not a graph in shared memory: README, "One graph per host" (measured by
``benchmarks/graph_host.py``).

Consistency: before answering, the host reads the database's graph version in a transaction of its
own, as every process did before answering: a write committed through any process of any host is
in the next answer. It answers from committed data only; no request asks a graph question about
relationships it wrote itself and has not committed (``cairn.uow`` commits a request's writes
before anything reads the graph for it).

The wire: a request is a 4-byte big-endian length and the JSON of ``[operation, args, kwargs]``
(plain values only: nothing in a request can make the host run code); an answer is a length and
the pickle of ``("ok", value)`` or ``("error", kind, detail, errors)``. The asking process trusts
the pickle because it comes from the socket its operator configured, created mode 0600 by the
host's user (the service's own user).

When the host cannot be reached within ``CAIRN_GRAPHD_WAIT_SECONDS`` (2 by default), or does not
answer within ``CAIRN_GRAPHD_TIMEOUT_SECONDS`` (120: a host's very first rebuild at a million CIs
takes tens of seconds), a process answers from a graph of its own and logs it (once a minute):
a host restarting costs memory for a while, never an error.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable

import orjson

from cairn.config import setting
from cairn.errors import Conflict, DomainError, Forbidden, Invalid, NotFound

log = logging.getLogger("cairn.relations.graphd")

SOCKET_SETTING = "CAIRN_GRAPHD_SOCKET"
_HEADER = struct.Struct(">I")
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # a question names at most a few thousand CIs
MAX_ANSWER_BYTES = 2**31  # an impact answer at 5M CIs stays well below
_ERRORS: dict[str, type[DomainError]] = {
    "invalid": Invalid,
    "not_found": NotFound,
    "conflict": Conflict,
    "forbidden": Forbidden,
}

# The operations a host answers: name -> the local function (filled by ``hosted``).
OPERATIONS: dict[str, Callable] = {}
_serving = False  # True in the graph host's own process: its hosted functions run here
_local = threading.local()
_last_fallback_log = 0.0
counters: Counter = Counter()  # per process: answers asked of a host, answered here instead


class HostUnavailable(ConnectionError):
    """The graph host did not take or answer the question."""


class HostFailed(RuntimeError):
    """The graph host took the question and failed on it (its log says why)."""


def socket_path() -> str:
    """The graph host's socket this process asks, or "" (answer here); always "" in the host."""
    if _serving:
        return ""
    return str(setting(SOCKET_SETTING, "") or "").strip()


def hosted(func: Callable) -> Callable:
    """Answer ``func`` on the graph host when one is configured, else (or when it can't be reached)
    here. Its arguments must be JSON values; its value is sent back as a pickle."""
    OPERATIONS[func.__name__] = func

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        path = socket_path()
        if not path:
            return func(*args, **kwargs)
        try:
            value = ask(path, func.__name__, *args, **kwargs)
        except HostUnavailable as exc:
            _note_fallback(path, exc)
            return func(*args, **kwargs)
        counters["asked"] += 1
        return value

    wrapper.here = func
    return wrapper


def ask(path: str, operation: str, *args, **kwargs):
    """Ask the host on ``path``; re-raises its domain errors (Invalid, NotFound...) as they were
    raised there. HostUnavailable when it can't be reached or doesn't answer in time."""
    try:
        request = orjson.dumps([operation, args, kwargs])
    except TypeError as exc:  # a value JSON can't carry (an integer past 64 bits): answered here
        raise HostUnavailable(f"not sent to the graph host: {exc}") from exc
    for attempt in (1, 2):  # a connection the host closed since (a restart) is retried once: asking is read-only
        conn = _connection(path)
        try:
            _send(conn, request)
            reply = _receive(conn, MAX_ANSWER_BYTES)
            break
        except (OSError, EOFError) as exc:
            _forget_connection(path)
            if attempt == 2 or isinstance(exc, TimeoutError):
                raise HostUnavailable(f"graph host at {path}: {exc}") from exc
    status, *rest = pickle.loads(reply)  # noqa: S301 - from our own host's socket (module docstring)
    if status == "ok":
        return rest[0]
    kind, detail, errors = rest
    error = _ERRORS.get(kind)
    if error is None:
        raise HostFailed(f"graph host at {path}: {detail}")
    raise error(detail, errors=errors)


def _connection(path: str) -> socket.socket:
    conns = _local.__dict__.setdefault("conns", {})
    held = conns.get(path)
    if held is not None and held[0] == os.getpid():
        return held[1]
    wait = max(0.0, _number("CAIRN_GRAPHD_WAIT_SECONDS", 2.0))
    timeout = max(1.0, _number("CAIRN_GRAPHD_TIMEOUT_SECONDS", 120.0))
    deadline = time.monotonic() + wait
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(timeout)
        try:
            conn.connect(path)
            break
        except OSError as exc:
            conn.close()
            if time.monotonic() >= deadline:
                raise HostUnavailable(f"graph host at {path}: {exc}") from exc
            time.sleep(0.05)
    conns[path] = (os.getpid(), conn)
    return conn


def _number(name: str, default: float) -> float:
    from flask import has_app_context

    return float(setting(name, default)) if has_app_context() else default  # tools ask without an app


def _forget_connection(path: str) -> None:
    held = _local.__dict__.get("conns", {}).pop(path, None)
    if held is not None:
        try:
            held[1].close()
        except OSError:
            pass


def close_connections() -> None:
    """Close this thread's connections to graph hosts (tests; a host restart is handled by itself)."""
    for path in list(_local.__dict__.get("conns", {})):
        _forget_connection(path)


def _note_fallback(path: str, exc: Exception) -> None:
    global _last_fallback_log
    counters["answered_here"] += 1
    now = time.monotonic()
    if now - _last_fallback_log > 60:
        _last_fallback_log = now
        log.warning("graph host unavailable (%s): answering from this process's own graph", exc)


def _send(conn: socket.socket, data: bytes) -> None:
    if len(data) < 65536:  # one write for the usual small message
        conn.sendall(_HEADER.pack(len(data)) + data)
    else:  # no copy of a large one
        conn.sendall(_HEADER.pack(len(data)))
        conn.sendall(data)


def _receive(conn: socket.socket, limit: int) -> bytes:
    size = _HEADER.unpack(_exactly(conn, _HEADER.size))[0]
    if size > limit:
        raise EOFError(f"message of {size} bytes, more than {limit}")
    return _exactly(conn, size)


def _exactly(conn: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = conn.recv_into(view[got:], size - got)
        if n == 0:
            raise EOFError("connection closed")
        got += n
    return bytes(buffer)


# ---------------------------------------------------------------------------------------------
# The host


class GraphHost(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The graph host's server: one thread per connected process, each question in an app context
    of its own (its own database session, closed after the answer)."""

    daemon_threads = True
    allow_reuse_address = False
    # Every thread of every process of the host may connect while the graph loads (see serve).
    request_queue_size = 1024

    def __init__(self, app, path: str):
        self.app = app
        self.path = path
        self.stats: Counter = Counter()
        _claim_socket_path(path)
        old_umask = os.umask(0o177)  # the socket is born 0600: only the service's user may connect
        try:
            super().__init__(path, _Connection)
        finally:
            os.umask(old_umask)

    def answer(self, request: bytes) -> bytes:
        try:
            operation, args, kwargs = orjson.loads(request)
            if operation == "stats":
                return pickle.dumps(("ok", self.describe()))
            func = OPERATIONS[operation]
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise TypeError("arguments")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self.stats["refused"] += 1
            return pickle.dumps(("error", "invalid", "Not a question this graph host answers.", None))
        from cairn.db import db

        with self.app.app_context():
            try:
                value = func(*args, **kwargs)
                self.stats[operation] += 1
                return pickle.dumps(("ok", value), protocol=pickle.HIGHEST_PROTOCOL)
            except DomainError as exc:
                kind = next((k for k, cls in _ERRORS.items() if type(exc) is cls), "failed")
                return pickle.dumps(("error", kind, exc.detail, exc.errors))
            except Exception as exc:  # the asking process answers 5xx; the host stays up
                log.exception("graph host: %s failed", operation)
                self.stats["failed"] += 1
                return pickle.dumps(("error", "failed", f"{type(exc).__name__}: {exc}", None))
            finally:
                db.session.remove()

    def describe(self) -> dict:
        """What the host answered so far (per operation) and its graph (``graph_stats``)."""
        from relations.graph import graph_stats

        with self.app.app_context():
            return {"answered": dict(self.stats), "graph": graph_stats(), "pid": os.getpid()}

    def server_close(self) -> None:
        super().server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class _Connection(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        conn = self.request
        while True:
            try:
                request = _receive(conn, MAX_REQUEST_BYTES)
            except (OSError, EOFError):
                return
            reply = self.server.answer(request)
            try:
                _send(conn, reply)
            except OSError:
                return


def _claim_socket_path(path: str) -> None:
    """Refuse to start beside a live host; remove the socket a dead one left behind."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except FileNotFoundError:
        return
    except OSError:
        os.unlink(path)  # nobody listens: a stale socket
        return
    finally:
        probe.close()
    raise OSError(f"a graph host already listens on {path}")


def serve(app, path: str, *, refresh_seconds: float = 1.0, ready: Callable[[GraphHost], None] | None = None):
    """Run the graph host on ``path`` until interrupted: listen first, then load the graph
    (snapshot, else the tables), then answer; every ``refresh_seconds`` it catches up with the
    change log between questions, so a question rarely waits for a refresh.

    Listening before loading matters on a restart at scale: a process that asks meanwhile
    connects and waits for the answer (up to ``CAIRN_GRAPHD_TIMEOUT_SECONDS``) instead of finding
    no host and loading a graph of its own (a gigabyte and seconds at a million CIs), as every
    web and job process of the host would."""
    global _serving
    _serving = True
    import relations.services
    import relations.tasks  # noqa: F401 - the operations they define with ``hosted`` are answered here
    from cairn.db import sqlite_begin_immediate
    from relations.graph import live_graph

    sqlite_begin_immediate.set(False)  # the host only reads: on SQLite, its load must not hold the write lock
    host = GraphHost(app, path)  # questions queue in the socket's backlog until serve_forever
    log.info("graph host: listening on %s, loading the graph (questions wait for it)", path)
    try:
        with app.app_context():
            from cairn.db import db

            started = time.perf_counter()
            with live_graph() as graph:
                nodes, edges = graph.G.number_of_nodes(), graph.G.number_of_edges()
                loaded = graph.stats["loaded_from"]
            db.session.remove()
            log.info(
                "graph host: %s CIs, %s relationships loaded from %s in %.1f s",
                f"{nodes:,}",
                f"{edges:,}",
                loaded,
                time.perf_counter() - started,
            )
    except BaseException:
        host.server_close()  # the processes waiting get "connection closed" and answer themselves
        raise
    stop = threading.Event()
    if refresh_seconds > 0:
        threading.Thread(target=_keep_fresh, args=(app, stop, refresh_seconds), daemon=True).start()
    if ready is not None:
        ready(host)
    try:
        host.serve_forever(poll_interval=0.5)
    finally:
        stop.set()
        host.server_close()


def _keep_fresh(app, stop: threading.Event, every: float) -> None:
    from cairn.db import db
    from relations.graph import live_graph

    while not stop.wait(every):
        try:
            with app.app_context():
                with live_graph():
                    pass
                db.session.remove()
        except Exception:  # the next question refreshes (and reports) anyway
            log.exception("graph host: refresh failed")
