"""Huey set-up: SQLite storage in the data dir by default, Redis when configured."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from functools import lru_cache

from huey import Huey, RedisHuey, SqliteHuey

import workers.jobs  # noqa: F401  (registers every job kind and periodic step)
import workers.leases  # noqa: F401  (the periodic step that retries or fails stale jobs)
from app.db.engine import session_scope
from app.services.jobs.leases import list_waiting_jobs
from app.services.jobs.records import install_queue
from app.settings import get_settings
from workers.periodic import periodic_step
from workers.process import spawn_worker, stop_process
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
    """Queue a committed job row for execution (runs at once when jobs are immediate).

    When the queue (Redis) cannot be reached, the job stays ``queued`` and the request that
    submitted it still succeeds: this process sends it again every second until the queue
    is back, and the periodic ``requeue_undelivered_jobs`` step catches any job whose
    process died first."""
    huey = get_huey()
    if huey.immediate:
        _RUN_JOB[huey](job_id)
        return
    try:
        _RUN_JOB[huey](job_id)
    except Exception as exc:  # noqa: BLE001 - whatever the storage raised, it was not queued
        log.warning("job %s stays queued: the job queue is unreachable (%s); it is sent again "
                    "when the queue is back", job_id, str(exc).splitlines()[0] if str(exc) else
                    type(exc).__name__)  # fmt: skip
        _send_later(job_id)


install_queue(dispatcher=dispatch, failure_hook=run_failure_hook)

REDELIVER_INTERVAL_S = 1.0
_undelivered: set[int] = set()
_undelivered_lock = threading.Lock()
_redeliverer: threading.Thread | None = None


def _send_later(job_id: int) -> None:
    global _redeliverer
    with _undelivered_lock:
        _undelivered.add(job_id)
        if _redeliverer is None or not _redeliverer.is_alive():
            _redeliverer = threading.Thread(target=_redeliver, name="job-redeliver", daemon=True)
            _redeliverer.start()


def _redeliver() -> None:
    """Send the jobs the queue refused, once a second, until each got through."""
    while True:
        time.sleep(REDELIVER_INTERVAL_S)
        with _undelivered_lock:
            waiting = sorted(_undelivered)
            if not waiting:
                return
        for job_id in waiting:
            try:
                _RUN_JOB[get_huey()](job_id)
            except Exception:  # noqa: BLE001 - still unreachable: next second
                break
            with _undelivered_lock:
                _undelivered.discard(job_id)
            log.info("job %s sent to the queue, which is reachable again", job_id)


def undelivered_job_ids() -> set[int]:
    """Jobs this process could not queue yet (waiting for the queue to come back)."""
    with _undelivered_lock:
        return set(_undelivered)


# A job that is still queued this long after it was submitted, and is not in the queue,
# was never delivered (its process died before the queue came back): send it again.
UNDELIVERED_AFTER_S = 30.0


@periodic_step("requeue_undelivered_jobs")
def requeue_undelivered_jobs() -> int:
    """Send again every queued job that the queue does not hold; returns how many.

    A job popped by a worker that has not marked it running yet may be sent twice: the
    second delivery finds it running (or done) and does nothing (``mark_running``)."""
    huey = get_huey()
    if huey.immediate:
        return 0
    with session_scope(write=False) as session:
        waiting = list_waiting_jobs(session, older_than_s=UNDELIVERED_AFTER_S)
    if not waiting:
        return 0
    in_queue = {
        task.args[0]
        for task in huey.pending()
        if task.name.endswith("run_job") and task.args
    }  # fmt: skip
    lost = [job_id for job_id in waiting if job_id not in in_queue]
    for job_id in lost:
        log.warning("job %s was queued but never delivered: sending it again", job_id)
        dispatch(job_id)
    return len(lost)


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


def watch_leases() -> threading.Event:
    """In a worker: look for jobs whose worker stopped every third of the lease, instead of
    only at the minute's maintenance, so a killed worker's job is retried about one lease
    after its last heartbeat. Every worker may look: taking a job back is one conditional
    write, which only one of them wins. Returns the event that stops the watch."""
    from workers.leases import recover_stale_jobs

    interval = max(0.3, get_settings().job_lease_seconds / 3)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(interval):
            try:
                counts = recover_stale_jobs()
            except Exception:  # noqa: BLE001 - the database is away: look again later
                log.warning("looking for stale jobs failed", exc_info=True)
                continue
            if any(counts.values()):
                log.info("stale jobs: %s", counts)

    threading.Thread(target=watch, name="lease-watch", daemon=True).start()
    return stop


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


# --- the embedded default's worker: a child process of the web server ---------------------

_child: subprocess.Popen | None = None


def _spawn_worker(threads: int) -> subprocess.Popen:
    return spawn_worker(threads, nice=get_settings().worker_nice)


def start_worker_process(threads: int = 2) -> subprocess.Popen:
    """Start ``crowdlab worker`` as a child of this (web server) process, with the same
    settings; it ends by itself when this process is gone, and is started again when it
    dies (a crash, ``kill -9``): its running job is then retried by the job's lease."""
    global _child
    with _consumer_lock:
        if _child is not None and _child.poll() is None:
            return _child
        _child = _spawn_worker(threads)
        first = _child

    def supervise() -> None:
        global _child
        while True:
            time.sleep(1.0)
            with _consumer_lock:
                if _child is None:  # stopped on purpose
                    return
                if _child.poll() is not None:
                    log.warning("job worker %d ended (%s): starting another", _child.pid,
                                _child.returncode)  # fmt: skip
                    _child = _spawn_worker(threads)

    threading.Thread(target=supervise, name="worker-supervisor", daemon=True).start()
    return first


def stop_worker_process(timeout: float = 10.0) -> None:
    """Stop the child worker (a running job is retried by the lease when it did not finish)."""
    global _child
    with _consumer_lock:
        child, _child = _child, None
    stop_process(child, timeout)
