"""The embedded default runs jobs in a child worker process of ``crowdlab serve``: an
upload or a training never competes with the pages for the server's interpreter, and the
child never outlives the server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.db.engine import new_session
from app.db.models import Job
from app.services.projects import uploads
from tests.builders.pools import make_pool


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" in status.read_text() or not status.exists()
    except FileNotFoundError:
        return True


def _wait(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_the_server_runs_a_job_in_its_child_worker(session, requester, monkeypatch, settings):
    monkeypatch.setenv("CROWDLAB_JOBS_IMMEDIATE", "false")
    monkeypatch.setenv("CROWDLAB_UPLOAD_JOB_THRESHOLD", "1")
    from tests.conftest import _clear_caches

    _clear_caches()
    import workers.queue as queue
    from app.main import create_app

    pool = make_pool(session, requester)
    with TestClient(create_app(start_jobs=True)):
        child = queue._child
        assert child is not None and child.poll() is None and child.pid != os.getpid()
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        lower = min(19, mine + settings.worker_nice)
        assert os.getpriority(os.PRIO_PROCESS, child.pid) == lower  # pages first
        tsv = b"INPUT:image\nhttps://img.example/a.png\nhttps://img.example/b.png\n"
        outcome = uploads.submit_upload(
            session, requester=requester, pool_id=pool.id, kind="tsv", files=[("a.tsv", tsv)]
        )
        assert outcome.job is not None
        job_id = outcome.job.id

        def finished() -> bool:
            with new_session(write=False) as s:
                return s.get(Job, job_id).status in ("succeeded", "failed")

        assert _wait(finished, 60), "the child worker did not run the upload"
        with new_session(write=False) as s:
            job = s.get(Job, job_id)
            assert job.status == "succeeded", job.error
            assert f":{child.pid}:" in (job.worker or ""), job.worker  # ran in the child
    assert _wait(lambda: _gone(child.pid), 15), "the worker outlived the server"


def test_a_child_worker_ends_when_its_server_dies(settings):
    env = {**os.environ, "CROWDLAB_JOBS_IMMEDIATE": "false"}
    code = (
        "import os, workers.queue as q; c = q.start_worker_process(1); "
        "print(c.pid, flush=True); os._exit(0)"  # the server dies without stopping it
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    pid = int(out.stdout.split()[-1])
    assert _wait(lambda: _gone(pid), 20), "the orphaned worker kept running"


def test_a_killed_worker_is_started_again(settings, monkeypatch):
    monkeypatch.setenv("CROWDLAB_JOBS_IMMEDIATE", "false")
    from tests.conftest import _clear_caches

    _clear_caches()
    import signal

    import workers.queue as queue

    first = queue.start_worker_process(1)
    try:
        os.kill(first.pid, signal.SIGKILL)  # a crash mid-job, as kill -9 does
        assert _wait(lambda: queue._child is not None and queue._child.pid != first.pid, 15)
        assert queue._child.poll() is None
    finally:
        queue.stop_worker_process()
    assert _wait(lambda: _gone(first.pid), 5)
