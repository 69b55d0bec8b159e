"""Start a real graph host (`cairn graphd`) for a test's database, as production runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tests.servers import ROOT, server_env


@contextmanager
def graph_host(
    database_url: str, workdir: Path, *, refresh_seconds: float = 1.0, loaded: bool = True, **extra_env: str
):
    """A `cairn graphd` process on a socket in ``workdir``; yields (socket path, process) once it
    answers (its graph loaded), or with ``loaded=False`` once it listens (a question then waits for
    its graph)."""
    path = workdir / "graph.sock"
    cairn = Path(sys.executable).with_name("cairn")
    log = workdir / "graphd.log"  # a file, not a pipe: a pipe nobody reads would stop the host once full
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [str(cairn), "graphd", "--socket", str(path), "--refresh-seconds", str(refresh_seconds)],
            cwd=ROOT,
            env=server_env(database_url, workdir / "host-instance", **extra_env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_for(path, proc, log)
        if loaded:
            _wait_for_answer(str(path), proc, log)
        yield str(path), proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)


def wait_for(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Until the host listens on ``path``."""
    _until(lambda: _listens(str(path)), proc, log, "start", timeout)


def _wait_for_answer(path: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    from relations import graphd

    _until(lambda: _answers(path), proc, log, "load its graph", timeout)
    graphd.close_connections()


def _listens(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(path)
    except OSError:
        return False
    return True


def _answers(path: str) -> bool:
    from relations import graphd

    try:
        graphd.ask(path, "stats")
    except graphd.HostUnavailable:
        return False
    return True


def _until(condition, proc: subprocess.Popen, log: Path, what: str, timeout: float) -> None:
    """Poll ``condition`` until it holds; fail with the host's log if it exits first, or after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise RuntimeError(f"graph host exited: {log.read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"graph host did not {what}")
        time.sleep(0.05)
