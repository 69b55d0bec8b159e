"""Start a real graph host (`cairn graphd`) for a test's database, as production runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from tests.deploy.topology import wait_until
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
    wait_until(_while_running(proc, log, lambda: _listens(str(path))), timeout, 0.05, "the graph host to listen")


def _wait_for_answer(path: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    from relations import graphd

    wait_until(_while_running(proc, log, lambda: _answers(path)), timeout, 0.05, "the graph host to load its graph")
    graphd.close_connections()


def _while_running(proc: subprocess.Popen, log: Path, condition):
    """``condition`` for `wait_until`, failing at once with the host's log if the host has exited."""

    def check() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"graph host exited: {log.read_text(errors='replace')[-2000:]}")
        return condition()

    return check


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
