"""Huey set-up: SQLite storage in the data dir by default, Redis when configured."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import lru_cache

from huey import Huey, RedisHuey, SqliteHuey

import workers.jobs  # noqa: F401  (registers every job kind and periodic step)
import workers.leases  # noqa: F401  (the periodic step that retries or fails stale jobs)
from app.services.jobs.records import install_queue
from app.settings import get_settings
from workers.registry import run_failure_hook

log = logging.getLogger("crowdlab.queue")


# the "run_job" task of each Huey instance (one per settings, see get_huey)
_RUN_JOB: dict[Huey, Callable[[int], object]] = {}


@lru_cache
def get_huey() -> Huey:
    """The process-wide Huey instance with the job runner and periodic tasks registered."""
    settings = get_settings()
    if settings.redis_url:
        huey: Huey = RedisHuey("crowdlab", url=settings.redis_url)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey("crowdlab", filename=str((settings.data_dir / "jobs.db").resolve()))
    huey.immediate = settings.jobs_immediate

    from huey import crontab

    from workers.registry import execute_job

    _RUN_JOB[huey] = huey.task(name="run_job")(execute_job)

    @huey.periodic_task(crontab(minute="*"), name="periodic_maintenance")
    def periodic_maintenance() -> None:
        from workers.periodic import run_periodic

        run_periodic()

    return huey


def dispatch(job_id: int) -> None:
    """Queue a committed job row for execution (runs at once when jobs are immediate)."""
    _RUN_JOB[get_huey()](job_id)


install_queue(dispatcher=dispatch, failure_hook=run_failure_hook)


def recover_at_start() -> None:
    """Before consuming: retry or fail the jobs whose worker stopped (a crash, a restart)."""
    from workers.leases import recover_stale_jobs

    try:
        counts = recover_stale_jobs()
    except Exception:  # noqa: BLE001 - the periodic pass tries again within a minute
        log.exception("recovering stale jobs at start failed")
        return
    if any(counts.values()):
        log.info("stale jobs at start: %s", counts)


_consumer_lock = threading.Lock()
_consumer = None


def start_in_process_consumer(workers: int = 2):
    """Start a thread-based consumer inside this process (for the one-command start)."""
    global _consumer
    with _consumer_lock:
        if _consumer is not None:
            return _consumer
        huey = get_huey()
        recover_at_start()
        consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=True)
        # The web server owns the process's signals; the consumer must not take them.
        consumer._set_signal_handlers = lambda: None  # noqa: SLF001  (Huey has no option)
        consumer.start()
        _consumer = consumer
        log.info("in-process job consumer started with %d threads", workers)
        return consumer


def stop_in_process_consumer() -> None:
    """Stop the in-process consumer, if running."""
    global _consumer
    with _consumer_lock:
        if _consumer is not None:
            _consumer.stop(graceful=False)
            _consumer = None
