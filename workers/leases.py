"""Jobs whose worker stopped responding: retried from their checkpoint, or failed.

Runs in the periodic maintenance (every minute) and when a worker starts.
"""

from __future__ import annotations

import logging

from app.db.engine import session_scope
from app.services.jobs.leases import (
    StaleJob,
    cancel_stale_job,
    fail_stale_job,
    list_stale_jobs,
    requeue_stale_job,
    stopped_reason,
)
from app.services.jobs.records import dispatch, remove_work_dir
from workers.periodic import periodic_step
from workers.registry import run_failure_hook, run_retry_hook

log = logging.getLogger("crowdlab.jobs")


@periodic_step("recover_stale_jobs")
def recover_stale_jobs() -> dict[str, int]:
    """Retry, fail or finish cancelling every running job whose heartbeat stopped."""
    with session_scope(write=False) as session:
        stale = list_stale_jobs(session)
    counts = {"retried": 0, "failed": 0, "cancelled": 0}
    for job in stale:
        outcome = _recover(job)
        if outcome:
            counts[outcome] += 1
    return counts


def _recover(job: StaleJob) -> str | None:
    if job.cancel_requested:
        if not cancel_stale_job(job):
            return None
        log.warning("job %s (%s) cancelled: its worker had stopped", job.id, job.kind)
        run_failure_hook(job.kind, job.payload, stopped_reason(job), cancelled=True)
        remove_work_dir(job.id)
        return "cancelled"
    if job.attempts < job.max_attempts:
        try:
            run_retry_hook(job.kind, job.id, job.payload)
        except Exception:  # noqa: BLE001 - a retry on dirty output would be wrong: fail it
            log.exception("retry clean-up of job %s (%s) failed", job.id, job.kind)
        else:
            if not requeue_stale_job(job):
                return None
            log.warning("job %s (%s) re-queued: its worker had stopped (attempt %s of %s)",
                        job.id, job.kind, job.attempts + 1, job.max_attempts)  # fmt: skip
            dispatch(job.id)
            return "retried"
    if not fail_stale_job(job):
        return None
    log.warning("job %s (%s) failed: its worker had stopped", job.id, job.kind)
    run_failure_hook(job.kind, job.payload, stopped_reason(job), cancelled=False)
    remove_work_dir(job.id)
    return "failed"
