"""Job kinds → functions. A job function takes ``(job_id, payload, progress)``.

Job functions open their own sessions, must be idempotent (a retried job finds its
own earlier work and carries on) and return a small JSON-able result dict.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from app.db.models import JobStatus
from app.services.jobs.records import JobCancelled, ProgressReporter, mark_finished, mark_running

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
    """Run one job row to completion, recording status, progress and errors.

    ``listener`` hears every progress update the job records (a foreground CLI run draws it).
    """
    from app.db.engine import session_scope
    from app.db.models import Job

    with session_scope() as session:
        row = session.get(Job, job_id)
        if row is None:
            log.warning("job %s vanished before it ran", job_id)
            return
        kind, payload = row.kind, dict(row.payload)
    if not mark_running(job_id):
        return
    progress = ProgressReporter(job_id, listener)
    try:
        result: Any = handler_for(kind)(job_id, payload, progress)
    # The failure hook updates the domain row (a run, a model) *before* the job is marked
    # finished: pages reload on "job done" and must then see the row's final status.
    except JobCancelled as exc:
        _on_failure(kind, payload, str(exc), cancelled=True)
        mark_finished(job_id, status=JobStatus.CANCELLED, message=str(exc))
    except Exception as exc:  # noqa: BLE001 - a job records every failure
        log.exception("job %s (%s) failed", job_id, kind)
        message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        error = traceback.format_exc()[-4000:]
        _on_failure(kind, payload, message, cancelled=False)
        mark_finished(job_id, status=JobStatus.FAILED, message=message, error=error)
    else:
        mark_finished(job_id, status=JobStatus.SUCCEEDED, message="Done.", result=result or {})


_FAILURE_HOOKS: dict[str, Callable[[dict, str, bool], None]] = {}


def on_failure(kind: str) -> Callable:
    """Register a hook that updates domain rows (a run, a model) when a job fails."""

    def decorator(func: Callable[[dict, str, bool], None]) -> Callable:
        _FAILURE_HOOKS[kind] = func
        return func

    return decorator


def _on_failure(kind: str, payload: dict, message: str, *, cancelled: bool) -> None:
    hook = _FAILURE_HOOKS.get(kind)
    if hook is None:
        return
    try:
        hook(payload, message, cancelled)
    except Exception:  # noqa: BLE001
        log.exception("failure hook for %s failed", kind)
