"""Jobs hold a lease: a heartbeat while they run; a job whose worker stopped is retried
(training from its last epoch) or failed with a reason; a stale worker writes nothing."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from app.db.engine import session_scope
from app.db.models import Job, JobStatus
from app.db.types import utcnow
from app.errors import Conflict
from app.services.jobs.records import (
    JobCancelled,
    LeaseLost,
    ProgressReporter,
    create_job,
    job_work_dir,
    mark_finished,
    mark_running,
    request_cancel,
)
from workers.periodic import run_periodic
from workers.registry import execute_job, job


@job("test_lease_ok")
def _ok(job_id, payload, progress):
    with session_scope(write=False) as s:
        row = s.get(Job, job_id)
        seen = {"message": row.message, "attempts": row.attempts}
    progress(1.0, "done", force=True)
    return seen


@job("test_lease_quiet")
def _quiet(job_id, payload, progress):
    """A long step with no progress report at all (a training epoch)."""

    def heartbeat():
        with session_scope(write=False) as s:
            return s.get(Job, job_id).heartbeat_at

    first = heartbeat()
    time.sleep(payload["seconds"])
    return {"first": first.isoformat(), "last": heartbeat().isoformat()}


@job("test_lease_taken_over")
def _taken_over(job_id, payload, progress):
    """Another worker takes the job over while this one was not looking."""
    with session_scope() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_token="other-worker", message="the other worker's")
        )
        s.commit()
    progress(0.5, "the stale worker's", force=True)
    return {"written": "by the stale worker"}


def _running_job(session, owner, *, kind="test_lease_ok", attempts=1, minutes_silent=10):
    """A job row left RUNNING by a worker that died ``minutes_silent`` ago."""
    row = create_job(session, kind=kind, owner=owner, payload={})
    row.status = JobStatus.RUNNING
    row.attempts = attempts
    row.lease_token = "dead-worker"
    row.started_at = row.heartbeat_at = utcnow() - timedelta(minutes=minutes_silent)
    session.add(row)
    session.commit()
    return row.id


def _job(session, job_id) -> Job:
    session.expire_all()
    return session.get(Job, job_id)


def test_heartbeat_renews_while_a_job_runs_without_reporting(
    session, requester, settings, monkeypatch
):
    from app.settings import get_settings

    monkeypatch.setenv("CROWDLAB_JOB_HEARTBEAT_SECONDS", "0.05")
    get_settings.cache_clear()
    row = create_job(session, kind="test_lease_quiet", owner=requester, payload={"seconds": 0.6})
    session.commit()
    execute_job(row.id)
    done = _job(session, row.id)
    assert done.status == JobStatus.SUCCEEDED, done.message
    assert done.result["last"] > done.result["first"]
    # The heartbeat stops with the job.
    stopped_at = done.heartbeat_at
    time.sleep(0.2)
    assert _job(session, row.id).heartbeat_at == stopped_at


def test_a_running_job_whose_heartbeat_stopped_is_retried_and_says_so(session, requester):
    job_id = _running_job(session, requester, attempts=1)
    assert run_periodic()["recover_stale_jobs"] == {"retried": 1, "failed": 0, "cancelled": 0}
    row = _job(session, job_id)  # jobs run at once in tests: the retry has run
    assert row.status == JobStatus.SUCCEEDED
    assert row.attempts == 2
    assert row.result == {
        "message": "Retrying after the worker stopped (attempt 2 of 3).",
        "attempts": 2,
    }
    assert row.lease_token != "dead-worker"


def test_a_job_out_of_attempts_is_failed_with_the_reason(session, requester):
    job_id = _running_job(session, requester, attempts=3)
    assert run_periodic()["recover_stale_jobs"] == {"retried": 0, "failed": 1, "cancelled": 0}
    row = _job(session, job_id)
    assert row.status == JobStatus.FAILED
    assert row.message.startswith("The worker running this job stopped responding")
    assert "no heartbeat since" in row.message and "tried 3 times" in row.message
    assert row.finished_at is not None


def test_a_job_with_a_fresh_heartbeat_is_left_running(session, requester):
    job_id = _running_job(session, requester, minutes_silent=0)
    assert run_periodic()["recover_stale_jobs"] == {"retried": 0, "failed": 0, "cancelled": 0}
    assert _job(session, job_id).status == JobStatus.RUNNING


def test_a_stale_workers_progress_and_finish_are_refused(session, requester):
    row = create_job(session, kind="test_lease_ok", owner=requester, payload={})
    session.commit()
    stale_lease = mark_running(row.id)
    assert stale_lease is not None and stale_lease.attempt == 1
    with session_scope() as s:  # the worker goes silent for ten minutes
        s.execute(update(Job).where(Job.id == row.id)
                  .values(heartbeat_at=utcnow() - timedelta(minutes=10)))  # fmt: skip
        s.commit()
    run_periodic()  # ... so another attempt takes the job over and finishes it
    taken = _job(session, row.id)
    assert (taken.status, taken.attempts) == (JobStatus.SUCCEEDED, 2)

    stale = ProgressReporter(row.id, lease=stale_lease)
    with pytest.raises(LeaseLost):
        stale(0.3, "the stale worker is back", force=True)
    assert not mark_finished(row.id, status=JobStatus.FAILED, message="stale", lease=stale_lease)
    after = _job(session, row.id)
    assert (after.status, after.message, after.progress) == (JobStatus.SUCCEEDED, "Done.", 1.0)


def test_a_worker_that_lost_its_lease_mid_run_writes_nothing(session, requester):
    row = create_job(session, kind="test_lease_taken_over", owner=requester, payload={})
    session.commit()
    execute_job(row.id)
    after = _job(session, row.id)
    assert after.status == JobStatus.RUNNING  # the other worker's to finish
    assert (after.message, after.lease_token) == ("the other worker's", "other-worker")
    assert after.result == {}


def test_cancel_of_a_dead_running_job_cancels_it_at_once(session, requester):
    job_id = _running_job(session, requester)
    cancelled = request_cancel(session, owner=requester, job_id=job_id)
    assert cancelled.status == JobStatus.CANCELLED
    assert "stopped responding" in cancelled.message and cancelled.finished_at
    with pytest.raises(Conflict):
        request_cancel(session, owner=requester, job_id=job_id)


def test_cancel_of_a_live_running_job_asks_it_to_stop(session, requester):
    job_id = _running_job(session, requester, minutes_silent=0)
    asked = request_cancel(session, owner=requester, job_id=job_id)
    assert asked.status == JobStatus.RUNNING and asked.cancel_requested
    with pytest.raises(JobCancelled):  # what the live worker sees at its next report
        ProgressReporter(job_id)(0.5, force=True)


def test_a_cancelled_job_whose_worker_then_died_ends_cancelled(session, requester):
    job_id = _running_job(session, requester, minutes_silent=0)
    request_cancel(session, owner=requester, job_id=job_id)
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id)
                  .values(heartbeat_at=utcnow() - timedelta(minutes=10)))  # fmt: skip
        s.commit()
    assert run_periodic()["recover_stale_jobs"] == {"retried": 0, "failed": 0, "cancelled": 1}
    assert _job(session, job_id).status == JobStatus.CANCELLED


def test_cancel_from_the_web_page_and_the_api_in_every_state(
    session, requester, requester_client, requester_api
):
    queued = create_job(session, kind="test_lease_ok", owner=requester, payload={})
    session.commit()
    dead = _running_job(session, requester)
    page = requester_client.post(f"/jobs/{queued.id}/cancel")
    assert page.status_code == 200 and 'data-status="cancelled"' in page.text
    api = requester_api.post(f"/api/v1/operations/{dead}/cancel")
    assert api.status_code == 200, api.text
    assert api.json()["status"] == "FAIL"  # Toloka's shape has no "cancelled"
    assert api.json()["details"]["message"].startswith("Cancelled.")
    again = requester_api.post(f"/api/v1/operations/{dead}/cancel")
    assert again.status_code == 409
    assert requester_client.post(f"/jobs/{dead}/cancel").status_code == 409
    assert job_work_dir(dead).exists() is False


def test_the_progress_bar_shows_the_retry_and_offers_cancel(session, requester, requester_client):
    job_id = _running_job(session, requester, minutes_silent=0, attempts=2)
    html = requester_client.get(f"/jobs/{job_id}/progress").text
    assert "Attempt 2 of 3" in html
    assert re.search(rf'hx-post="[^"]*/jobs/{job_id}/cancel"', html)
    html = requester_client.post(f"/jobs/{job_id}/cancel").text
    assert "Cancelling…" in html and 'data-status="running"' in html


def test_a_progress_report_that_finds_the_database_busy_does_not_fail_the_job(
    session, requester, monkeypatch
):
    """A training job reports progress while a big upload holds SQLite's write lock past
    the busy timeout: the report is skipped (the next one lands), the job goes on."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from app.services.jobs import records

    row = create_job(session, kind="test_lease_ok", owner=requester, payload={})
    session.commit()
    lease = mark_running(row.id)
    report = ProgressReporter(row.id, lease=lease)
    real, busy = records.session_scope, [True]

    def busy_writer(*args, **kwargs):
        if kwargs.get("write", True) and busy[0]:
            busy[0] = False
            raise OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))
        return real(*args, **kwargs)

    monkeypatch.setattr(records, "session_scope", busy_writer)
    report(0.4, "epoch 2 of 5")  # skipped, no error
    assert _job(session, row.id).progress == 0.0
    report(0.5, "epoch 3 of 5")  # not throttled: the skipped report is owed
    after = _job(session, row.id)
    assert (after.progress, after.message) == (0.5, "epoch 3 of 5")


def test_a_worker_takes_a_dead_workers_job_over_within_a_lease_not_a_minute(
    session, requester, monkeypatch
):
    """``crowdlab worker`` looks for stale jobs every third of the lease (here 0.9 s -> 1 s),
    not only at the minute's maintenance."""
    from app.settings import get_settings
    from workers.queue import watch_leases

    monkeypatch.setenv("CROWDLAB_JOB_LEASE_SECONDS", "0.9")
    get_settings.cache_clear()
    job_id = _running_job(session, requester, minutes_silent=0)  # alive ...
    with session_scope() as s:  # ... until its worker is killed: no heartbeat from now on
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow()))
        s.commit()
    stop = watch_leases()
    try:
        deadline = time.monotonic() + 10
        while _job(session, job_id).status != JobStatus.SUCCEEDED:
            assert time.monotonic() < deadline, "the job was not taken over"
            time.sleep(0.1)
    finally:
        stop.set()
    taken = _job(session, job_id)
    assert taken.attempts == 2 and "attempt 2 of 3" in taken.result["message"]
    assert (taken.finished_at - taken.started_at).total_seconds() < 5


_INTERRUPTIONS: list[int] = []


@job("test_lease_db_dropped")
def _db_dropped(job_id, payload, progress):
    """The database drops the connection under the first attempt (``pg_terminate_backend``,
    a server restart)."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    with session_scope(write=False) as s:
        attempts = s.get(Job, job_id).attempts
    if attempts <= payload["interruptions"]:
        _INTERRUPTIONS.append(attempts)
        raise OperationalError(
            "UPDATE aggregation_run ...", {}, psycopg.OperationalError("server closed the "
                                                                       "connection unexpectedly")
        )  # fmt: skip
    return {"attempt": attempts}


def test_a_job_the_database_interrupted_is_retried_not_failed(session, requester, monkeypatch):
    import workers.registry

    monkeypatch.setattr(workers.registry, "INTERRUPTION_BACKOFF_S", 0.01)
    _INTERRUPTIONS.clear()
    row = create_job(session, kind="test_lease_db_dropped", owner=requester,
                     payload={"interruptions": 1})  # fmt: skip
    session.commit()
    execute_job(row.id)  # jobs run at once in tests: the retry runs inside
    done = _job(session, row.id)
    assert (done.status, done.attempts, done.result) == (JobStatus.SUCCEEDED, 2, {"attempt": 2})
    assert _INTERRUPTIONS == [1]


def test_a_job_the_database_keeps_interrupting_fails_with_the_reason(
    session, requester, monkeypatch
):
    import workers.registry

    monkeypatch.setattr(workers.registry, "INTERRUPTION_BACKOFF_S", 0.01)
    row = create_job(session, kind="test_lease_db_dropped", owner=requester,
                     payload={"interruptions": 99})  # fmt: skip
    session.commit()
    execute_job(row.id)
    done = _job(session, row.id)
    assert (done.status, done.attempts) == (JobStatus.FAILED, 3)  # CROWDLAB_JOB_MAX_ATTEMPTS
    assert "server closed the connection unexpectedly" in done.message
