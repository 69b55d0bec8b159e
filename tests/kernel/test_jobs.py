"""Jobs run inline without Redis, and in a real RQ worker process with it."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from cairn.audit.models import ChangeLog
from cairn.auth.models import Team
from cairn.jobs import enqueue, enqueue_now

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_config(app, redis_url):
    queue_name = f"test-{uuid.uuid4().hex[:8]}"
    previous = app.config["REDIS_URL"], app.config["CAIRN_QUEUE_NAME"]
    app.config.update(REDIS_URL=redis_url, CAIRN_QUEUE_NAME=queue_name)
    yield queue_name
    app.config["REDIS_URL"], app.config["CAIRN_QUEUE_NAME"] = previous


def test_inline_without_redis(db):
    assert enqueue("tests.kernel.jobs_for_tests.make_team", "inline-team") is None
    assert db.session.scalar(select(Team).where(Team.name == "inline-team")) is None, "not before the commit"
    db.session.commit()
    team = db.session.scalar(select(Team).where(Team.name == "inline-team"))
    assert team is not None
    entry = db.session.scalar(select(ChangeLog).where(ChangeLog.object_type == "team", ChangeLog.object_id == team.id))
    assert entry.actor == "job:tests.kernel.jobs_for_tests.make_team"


def test_inline_failure_rolls_back_and_raises(db):
    with pytest.raises(RuntimeError):
        enqueue_now("tests.kernel.jobs_for_tests.fail", "boom")
    assert db.session.scalar(select(Team).where(Team.name == "never-committed-boom")) is None


def test_real_worker_runs_queued_jobs(app, committed_db, redis_config, database_url, instance_dir):
    job = enqueue_now("tests.kernel.jobs_for_tests.make_team", "from-the-worker")
    again = enqueue_now("tests.kernel.jobs_for_tests.make_team", "keyed", job_id="same-key")
    duplicate = enqueue_now("tests.kernel.jobs_for_tests.make_team", "keyed", job_id="same-key")
    assert job is not None and again.id == duplicate.id == "same-key"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": app.config["REDIS_URL"],
        "CAIRN_QUEUE_NAME": redis_config,
        "CAIRN_INSTANCE_PATH": str(instance_dir),
        "PYTHONPATH": str(ROOT),
        "CAIRN_LOG_LEVEL": "WARNING",
    }
    cairn = Path(sys.executable).parent / "cairn"
    result = subprocess.run(
        [str(cairn), "worker", "--burst"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    committed_db.session.expire_all()
    names = set(committed_db.session.scalars(select(Team.name)))
    assert {"from-the-worker", "keyed"} <= names
    assert len([n for n in committed_db.session.scalars(select(Team.name)) if n == "keyed"]) == 1
    actors = set(committed_db.session.scalars(select(ChangeLog.actor).where(ChangeLog.object_type == "team")))
    assert actors == {"job:tests.kernel.jobs_for_tests.make_team"}


def test_redis_down_does_not_fail_the_caller(app, db):
    previous = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    try:
        assert enqueue_now("tests.kernel.jobs_for_tests.make_team", "never") is None
    finally:
        app.config["REDIS_URL"] = previous
    assert db.session.scalar(select(Team).where(Team.name == "never")) is None


def test_worker_refuses_to_start_without_redis(app):
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 1 and "REDIS_URL" in result.output


def test_scheduler_enqueues_periodic_jobs_that_a_worker_runs(
    app, committed_db, redis_config, database_url, instance_dir
):
    import redis

    from cairn.jobs.schedule import PERIODIC_JOBS

    assert ("cairn.jobs.tasks.heartbeat", 60) in PERIODIC_JOBS
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": app.config["REDIS_URL"],
        "CAIRN_QUEUE_NAME": redis_config,
        "CAIRN_INSTANCE_PATH": str(instance_dir),
        "CAIRN_LOG_LEVEL": "WARNING",
    }
    cairn = str(Path(sys.executable).parent / "cairn")
    scheduler = subprocess.Popen([cairn, "scheduler"], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    connection = redis.Redis.from_url(app.config["REDIS_URL"])
    try:
        deadline = time.monotonic() + 30
        queue_key = f"rq:queue:{redis_config}"
        while time.monotonic() < deadline and not connection.llen(queue_key):
            time.sleep(0.1)
        assert connection.llen(queue_key) >= 1, "the scheduler enqueued the due jobs"
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=30)
    assert connection.get("cairn:heartbeat") is None
    result = subprocess.run(
        [cairn, "worker", "--burst"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert connection.get("cairn:heartbeat") is not None
