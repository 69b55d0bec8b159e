"""Real server processes for tests that need more than one process on the test database: gunicorn
as the README deploys it, started on free ports with the test database and a log file each."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, instance: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process on the test database, without Redis (jobs inline) and
    without the embedded runner (its periodic writes would only race a test's setup on SQLite)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CAIRN_INSTANCE_PATH": str(instance),
        "CAIRN_LOG_LEVEL": "WARNING",
        "SECRET_KEY": "test-secret",
        "CAIRN_EMBEDDED_RUNNER": "false",
        **extra,
    }
    env.pop("REDIS_URL", None)
    return env


@contextmanager
def gunicorn_servers(database_url: str, workdir: Path, count: int = 2, **extra_env: str):
    """``count`` gunicorn processes (one worker each); yields their base URLs. Each writes its log
    to a file in ``workdir`` (a pipe nobody reads would stop a chatty server), shown when one fails
    to start within two minutes (a loaded two-core machine imports slowly)."""
    env = server_env(database_url, workdir, **extra_env)
    servers = []
    try:
        for _ in range(count):
            port = free_port()
            log = workdir / f"gunicorn-{port}.log"
            with open(log, "wb") as stderr:
                proc = subprocess.Popen(
                    [str(BIN / "gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            servers.append((proc, f"http://127.0.0.1:{port}", log))
        for proc, url, log in servers:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.1)
        yield [url for _, url, _ in servers]
    finally:
        for proc, _, _ in servers:
            proc.terminate()
        for proc, _, _ in servers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
