"""A deployment as the README describes it, started by a test: gunicorn with several workers,
separate `cairn worker` processes, one `cairn scheduler` and a private Redis on a free port (so a
test may stop and start it), against the suite's database."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class Deployment:
    def __init__(self, database_url: str, instance_dir: Path, log_dir: Path, *, redis: bool = True, **env):
        self.log_dir = log_dir
        self.redis_port = free_port() if redis else None
        self.redis_process: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.scheduler: subprocess.Popen | None = None
        self.others: list[subprocess.Popen] = []
        self.spawned = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "CAIRN_INSTANCE_PATH": str(instance_dir),
            "SECRET_KEY": "test-secret",
            "CAIRN_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **{k: str(v) for k, v in env.items()},
        }
        self.env.pop("REDIS_URL", None)
        if redis:
            self.env["REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"

    # Redis ------------------------------------------------------------------------------------
    def start_redis(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.redis_process = subprocess.Popen(
            [server, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._redis_up, 15, message="redis-server")

    def _redis_up(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.redis_port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop_redis(self) -> None:
        self.redis_process.terminate()
        self.redis_process.wait(timeout=15)

    # Processes --------------------------------------------------------------------------------
    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        self.spawned += 1
        log = open(self.log_dir / f"{name}-{self.spawned}.log", "ab")  # noqa: SIM115
        return subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_web(self, workers: int = 2, command: list[str] | None = None) -> None:
        args = command or [str(BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "wsgi:app"]
        self.web = self._spawn(args, "web")
        wait_until(self._web_up, 60, message=f"the web server ({self.log_dir})")

    def _web_up(self) -> bool:
        if self.web.poll() is not None:
            raise AssertionError(f"the web server exited: see {self.log_dir}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self) -> subprocess.Popen:
        worker = self._spawn([str(BIN / "cairn"), "worker"], "worker")
        self.workers.append(worker)
        return worker

    def start_graphd(self) -> str:
        """`cairn graphd` on a socket in the log directory; the processes started after it ask it
        their graph questions (CAIRN_GRAPHD_SOCKET), as the README's "One graph per host" says."""
        path = self.log_dir / "graph.sock"
        proc = self._spawn([str(BIN / "cairn"), "graphd", "--socket", str(path), "--refresh-seconds", "1"], "graphd")
        self.others.append(proc)
        wait_until(lambda: self._graphd_up(path, proc), 120, message=f"the graph host ({self.log_dir})")
        self.env["CAIRN_GRAPHD_SOCKET"] = str(path)
        return str(path)

    @staticmethod
    def _graphd_up(path: Path, proc: subprocess.Popen) -> bool:
        if proc.poll() is not None:
            raise AssertionError("the graph host exited")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                return False
        return True

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn([str(BIN / "cairn"), "scheduler"], "scheduler")

    def kill_worker(self, index: int = 0) -> None:
        worker = self.workers.pop(index)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

    def restart_dead(self) -> int:
        """What a supervisor (systemd Restart=always) does: start again what exited."""
        restarted = 0
        for i, worker in enumerate(list(self.workers)):
            if worker.poll() is not None:
                self.workers[i] = self._spawn([str(BIN / "cairn"), "worker"], "worker")
                restarted += 1
        if self.scheduler is not None and self.scheduler.poll() is not None:
            self.start_scheduler()
            restarted += 1
        return restarted

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "cairn"), *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def close(self) -> None:
        for process in [self.web, self.scheduler, *self.workers, *self.others]:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in [self.web, self.scheduler, *self.workers, *self.others]:
            if process is not None:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        if self.redis_process is not None and self.redis_process.poll() is None:
            self.redis_process.terminate()
            self.redis_process.wait(timeout=10)
