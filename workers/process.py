"""The job worker as a child process: ``crowdlab worker``, started by the web server.

Light on purpose (no job queue, no app): ``crowdlab serve``'s parent process, which only
starts and watches the web processes, starts the worker with this too.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

log = logging.getLogger("crowdlab.queue")

PARENT_PID_ENV = "CROWDLAB_WORKER_PARENT_PID"


def spawn_worker(threads: int, *, nice: int) -> subprocess.Popen:
    """Start ``crowdlab worker --threads threads`` with this process's settings, ``nice``
    steps below this process's CPU priority; it ends by itself when this process is gone
    (``exit_with_parent``)."""
    code = (
        "from app.cli import main; "
        f"raise SystemExit(main(['worker', '--threads', '{int(threads)}']))"
    )
    env = {**os.environ, PARENT_PID_ENV: str(os.getpid())}
    # a lower CPU priority: on a small machine the pages come first, the jobs take what is
    # left (they run as fast as before on an idle one)
    preexec = (lambda: os.nice(nice)) if nice and hasattr(os, "nice") else None
    child = subprocess.Popen([sys.executable, "-c", code], env=env, preexec_fn=preexec)
    log.info("job worker process %d started with %d threads", child.pid, threads)
    return child


def stop_process(child: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """Stop a child process: SIGTERM, then after ``timeout`` seconds SIGKILL (a worker's
    running job is retried by its lease when it did not finish)."""
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def exit_with_parent() -> None:
    """In a child worker: exit as soon as the process that started it is gone."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        log.warning("the web server that started this worker is gone: stopping")
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
