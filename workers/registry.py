"""Job kinds → functions. A job function takes ``(job_id, payload, progress)``.

Job functions open their own sessions, must be idempotent (a retried job finds its
own earlier work and carries on) and return a small JSON-able result dict.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from app.db.engine import is_busy_error
from app.db.models import JobStatus
from app.services.jobs.leases import Heartbeat, requeue_interrupted_job
from app.services.jobs.records import (
    JobCancelled,
    Lease,
    LeaseLost,
    ProgressReporter,
    dispatch,
    holds_lease,
    mark_finished,
    mark_running,
    remove_work_dir,
)

log = logging.getLogger("crowdlab.jobs")

JobFunction = Callable[[int, dict, ProgressReporter], dict | None]
_REGISTRY: dict[str, JobFunction] = {}


def job(kind: str) -> Callable[[JobFunction], JobFunction]:
    """Register a function as the handler of one job kind."""

    def decorator(func: JobFunction) -> JobFunction:
        _REGISTRY[kind] = func
        return func

    return decorator


def handler_for(kind: str) -> JobFunction:
    """The function registered for a kind (``workers.queue`` imports every job module)."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise LookupError(f"No job handler for kind {kind!r}") from None


def execute_job(job_id: int, listener: Callable[[float, str], None] | None = None) -> None:
    """Run one attempt of a job row, recording status, progress and errors.

    The attempt holds the job's lease and renews its heartbeat from a background thread
    while it runs. ``listener`` hears every progress update the job records (a foreground
    CLI run draws it).
    """
    from app.db.engine import session_scope
    from app.db.models import Job

    with session_scope(write=False) as session:
        row = session.get(Job, job_id)
        if row is None:
            log.warning("job %s vanished before it ran", job_id)
            return
        kind, payload = row.kind, dict(row.payload)
    lease = mark_running(job_id)
    if lease is None:
        return
    progress = ProgressReporter(job_id, listener, lease=lease)
    with Heartbeat(lease, progress):
        _run_attempt(job_id, kind, payload, progress, lease)


def _run_attempt(
    job_id: int, kind: str, payload: dict, progress: ProgressReporter, lease: Lease
) -> None:
    try:
        result: Any = handler_for(kind)(job_id, payload, progress)
    # The failure hook updates the domain row (a run, a model) *before* the job is marked
    # finished: pages reload on "job done" and must then see the row's final status.
    except LeaseLost:
        # Another worker took the job over (or it was failed or cancelled while this one
        # was not responding): that worker, or the maintenance pass, owns it now.
        log.warning("job %s (%s): lease lost, attempt %s abandoned", job_id, kind, lease.attempt)
        return
    except JobCancelled as exc:
        if holds_lease(lease, job_id):
            run_failure_hook(kind, payload, str(exc), cancelled=True)
            mark_finished(job_id, status=JobStatus.CANCELLED, message=str(exc), lease=lease)
    except Exception as exc:  # noqa: BLE001 - a job records every failure
        if is_busy_error(exc) and _retry_interrupted(job_id, kind, payload, lease, exc):
            return  # (its work dir stays: a training resumes from its last epoch)
        log.exception("job %s (%s) failed", job_id, kind)
        message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        error = traceback.format_exc()[-4000:]
        if holds_lease(lease, job_id):
            run_failure_hook(kind, payload, message, cancelled=False)
            mark_finished(
                job_id,
                status=JobStatus.FAILED,
                message=message,
                error=error,
                # what a refusal names (the bad rows of an upload), for the job's page
                result=getattr(exc, "payload", None) or None,
                lease=lease,
            )
    else:
        if not mark_finished(
            job_id, status=JobStatus.SUCCEEDED, message="Done.", result=result or {}, lease=lease
        ):
            log.warning("job %s (%s): finished after its lease was lost", job_id, kind)
            return
    remove_work_dir(job_id)


# A database interruption (connection dropped, server restarting, statement timed out) is
# not the job's fault: its attempt is retried, after this many seconds per attempt so far.
INTERRUPTION_BACKOFF_S = 2.0


def _retry_interrupted(job_id: int, kind: str, payload: dict, lease: Lease, exc: Exception
                       ) -> bool:  # fmt: skip
    """Re-queue an attempt the database interrupted; False when the job is to fail instead
    (no attempt left, or its clean-up failed)."""
    if lease.attempt >= lease.max_attempts:
        return False
    first_line = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
    log.warning("job %s (%s): the database interrupted attempt %s (%s); retrying", job_id,
                kind, lease.attempt, first_line)  # fmt: skip
    time.sleep(INTERRUPTION_BACKOFF_S * lease.attempt)
    try:
        run_retry_hook(kind, job_id, payload)
        queued = requeue_interrupted_job(lease, reason="a database interruption")
    except Exception:  # noqa: BLE001 - the database is still away: the lease retries it
        log.exception("job %s (%s): could not re-queue it yet", job_id, kind)
        return True
    if queued:
        dispatch(job_id)
    return True


_FAILURE_HOOKS: dict[str, Callable[[dict, str, bool], None]] = {}
_RETRY_HOOKS: dict[str, Callable[[int, dict], None]] = {}


def on_failure(kind: str) -> Callable:
    """Register a hook that updates domain rows (a run, a model) when a job fails."""

    def decorator(func: Callable[[dict, str, bool], None]) -> Callable:
        _FAILURE_HOOKS[kind] = func
        return func

    return decorator


def on_retry(kind: str) -> Callable:
    """Register a hook that removes an abandoned attempt's partial output before a retry.

    It gets ``(job_id, payload)``. Kinds without one must be safe to re-run as they are
    (all-or-nothing writes; the job's work dir is theirs to resume from).
    """

    def decorator(func: Callable[[int, dict], None]) -> Callable:
        _RETRY_HOOKS[kind] = func
        return func

    return decorator


def run_failure_hook(kind: str, payload: dict, message: str, *, cancelled: bool) -> None:
    """Tell the job's domain row (a run, a model) that the job failed or was cancelled."""
    hook = _FAILURE_HOOKS.get(kind)
    if hook is None:
        return
    try:
        hook(payload, message, cancelled)
    except Exception:  # noqa: BLE001
        log.exception("failure hook for %s failed", kind)


def run_retry_hook(kind: str, job_id: int, payload: dict) -> None:
    """Clean an abandoned attempt's partial output (when the kind has a hook for it)."""
    hook = _RETRY_HOOKS.get(kind)
    if hook is not None:
        hook(job_id, payload)
