"""The job runner records status, progress, results, failures and cancels."""

from __future__ import annotations

import pytest

from app.db.models import Job, JobStatus
from app.services.jobs.records import request_cancel, submit_job
from workers.registry import job, on_failure


@job("test_ok")
def _ok(job_id, payload, progress):
    for i in range(3):
        progress((i + 1) / 3, f"step {i + 1}", force=True)
    return {"doubled": payload["n"] * 2}


@job("test_fail")
def _fail(job_id, payload, progress):
    raise ValueError("the input had no rows")


_SEEN_BY_HOOK: list[str] = []


@job("test_fail_with_hook")
def _fail_with_hook(job_id, payload, progress):
    raise ValueError("broken input")


@on_failure("test_fail_with_hook")
def _record_job_status(payload, message, cancelled):
    from app.db.engine import session_scope

    with session_scope(write=False) as other:
        _SEEN_BY_HOOK.append(other.get(Job, payload["job_id"]).status)


def test_failure_hook_runs_before_the_job_is_seen_finished(session, requester):
    """Pages reload once a job is done; the domain row must be final by then."""
    from app.services.jobs.records import create_job
    from workers.registry import execute_job

    _SEEN_BY_HOOK.clear()
    row = create_job(session, kind="test_fail_with_hook", owner=requester, payload={})
    row.payload = {"job_id": row.id}
    session.add(row)
    session.commit()
    execute_job(row.id)
    assert _SEEN_BY_HOOK == [JobStatus.RUNNING]
    session.expire_all()
    assert session.get(Job, row.id).status == JobStatus.FAILED


def test_a_listener_hears_every_recorded_update(session, requester):
    """A foreground run (``crowdlab train``) draws each update, however quickly it comes."""
    from app.services.jobs.records import create_job
    from workers.registry import execute_job

    row = create_job(session, kind="test_ok", owner=requester, payload={"n": 1})
    session.commit()
    heard: list[tuple[float, str]] = []
    execute_job(row.id, lambda fraction, message: heard.append((round(fraction, 2), message)))
    assert heard == [(0.33, "step 1"), (0.67, "step 2"), (1.0, "step 3")]


def test_job_runs_and_reports_result(session, requester):
    job_row = submit_job(session, kind="test_ok", owner=requester, payload={"n": 21})
    session.expire_all()
    row = session.get(Job, job_row.id)
    assert row.status == JobStatus.SUCCEEDED
    assert row.progress == pytest.approx(1.0)
    assert row.result == {"doubled": 42}
    assert row.started_at and row.finished_at


def test_failed_job_keeps_its_message(session, requester):
    job_row = submit_job(session, kind="test_fail", owner=requester, payload={})
    session.expire_all()
    row = session.get(Job, job_row.id)
    assert row.status == JobStatus.FAILED
    assert row.message == "the input had no rows"
    assert "ValueError" in row.error


def test_progress_partial_polls_until_done(requester_client, session, requester):
    job_row = submit_job(session, kind="test_ok", owner=requester, payload={"n": 1})
    html = requester_client.get(f"/jobs/{job_row.id}/progress").text
    assert "100% · succeeded" in html
    assert 'hx-trigger="every 2s"' not in html


def test_queued_job_can_be_cancelled_and_never_runs(session, requester, settings):
    from app.services.jobs.records import create_job

    row = create_job(session, kind="test_ok", owner=requester, payload={"n": 1})
    session.commit()
    cancelled = request_cancel(session, owner=requester, job_id=row.id)
    assert cancelled.status == JobStatus.CANCELLED


def test_someone_elses_job_is_not_found(labeler_client, session, requester):
    job_row = submit_job(session, kind="test_ok", owner=requester, payload={"n": 1})
    assert labeler_client.get(f"/jobs/{job_row.id}/progress").status_code == 404
