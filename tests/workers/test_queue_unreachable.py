"""Redis (the job queue) down when a job is submitted: the request still succeeds, the job
stays queued, and it reaches the queue once Redis is back, whether the process that
submitted it is still there (it retries every second) or not (the periodic step)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.db.engine import session_scope
from app.db.models import Job, JobStatus
from app.db.types import utcnow
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool
from tests.builders.users import make_labeler

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_queue(settings, monkeypatch, tmp_path):
    """Jobs go to a Redis on a port of its own (not started yet: ``start()`` starts it)."""
    from app.settings import get_settings
    from workers import queue

    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed")
    port = _free_port()
    monkeypatch.setenv("CROWDLAB_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setenv("CROWDLAB_JOBS_IMMEDIATE", "false")
    monkeypatch.setattr(queue, "REDELIVER_INTERVAL_S", 0.1)
    get_settings.cache_clear()
    queue.get_huey.cache_clear()
    procs: list[subprocess.Popen] = []

    class Redis:
        def start(self) -> None:
            procs.append(subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--dir", str(tmp_path)], stdout=subprocess.DEVNULL))  # fmt: skip
            deadline = time.monotonic() + 10
            while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

        def queued_job_ids(self) -> list[int]:
            return [t.args[0] for t in queue.get_huey().pending() if t.name.endswith("run_job")]

    yield Redis()
    for proc in procs:
        proc.terminate()
        proc.wait(10)
    queue.get_huey.cache_clear()


def _pool_with_answers(session, requester):
    pool = make_pool(session, requester)
    tasks = add_tasks(session, pool, general=2)
    people = [make_labeler(session) for _ in range(2)]
    add_answers(session, pool, {t.id: [(p, "cat") for p in people] for t in tasks})
    return pool


def _last_job_id() -> int:
    with session_scope(write=False) as s:
        return s.scalars(select(Job.id).order_by(Job.id.desc())).first()


def _status(job_id: int) -> str:
    with session_scope(write=False) as s:
        return s.get(Job, job_id).status


def test_a_job_submitted_while_redis_is_down_is_queued_and_sent_when_it_is_back(
    redis_queue, requester_api, session, requester
):
    from workers import queue

    pool = _pool_with_answers(session, requester)
    response = requester_api.post(f"/api/v1/pools/{pool.id}/aggregations", json={"method": "mv"})
    assert response.status_code == 202, response.text  # not a 500: the run exists
    job_id = _last_job_id()
    assert _status(job_id) == JobStatus.QUEUED
    assert queue.undelivered_job_ids() == {job_id}

    redis_queue.start()
    deadline = time.monotonic() + 10
    while queue.undelivered_job_ids():
        assert time.monotonic() < deadline, "the job was not sent when Redis came back"
        time.sleep(0.05)
    assert redis_queue.queued_job_ids() == [job_id]


def test_the_periodic_step_sends_queued_jobs_the_queue_lost(
    redis_queue, requester_api, session, requester
):
    from workers import queue

    pool = _pool_with_answers(session, requester)
    redis_queue.start()
    delivered = requester_api.post(f"/api/v1/pools/{pool.id}/aggregations", json={"method": "mv"})
    assert delivered.status_code == 202, delivered.text
    job_in_queue = _last_job_id()
    with session_scope() as s:  # a job whose web process died before Redis came back
        lost = Job(kind="aggregation", payload={}, status=JobStatus.QUEUED)
        s.add(lost)
        s.commit()
        lost_id = lost.id
    assert queue.requeue_undelivered_jobs() == 0  # too recent: it may still be on its way
    with session_scope() as s:
        old = utcnow() - timedelta(seconds=queue.UNDELIVERED_AFTER_S + 1)
        s.execute(update(Job).values(created_at=old))
        s.commit()
    assert queue.requeue_undelivered_jobs() == 1  # the lost one; the other is in the queue
    assert sorted(redis_queue.queued_job_ids()) == sorted([job_in_queue, lost_id])
    assert queue.requeue_undelivered_jobs() == 0  # now in the queue: not sent twice
