"""``crowdlab serve``: the web server, in one process or several on one port.

Several processes each bind the port with ``SO_REUSEPORT``, so the kernel spreads the
connections over them (a single shared socket would hand a keep-alive client's every
request to whichever process woke first). Background jobs (imports, training,
aggregation) run in one more process, ``crowdlab worker`` at a lower CPU priority
(``CROWDLAB_WORKER_NICE``), so no web process shares its interpreter or its priority with
a job. This parent only starts the processes, starts again one that died (a worker's
running job is then retried by its lease), and stops them all on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import time

log = logging.getLogger("crowdlab.serve")

MAX_AUTO_PROCESSES = 4


def process_count(configured: int) -> int:
    """``configured``, or for 0 one process per CPU core (at most ``MAX_AUTO_PROCESSES``)."""
    if configured > 0:
        return configured
    return max(1, min(MAX_AUTO_PROCESSES, os.cpu_count() or 1))


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve_one(host: str, port: int) -> None:
    """One web process: its own socket on the shared port; no jobs (the worker runs them)."""
    import uvicorn

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    os.environ["CROWDLAB_JOBS_IN_PROCESS"] = "false"  # (read when the app's settings load)
    sock = _listen(host, port)
    run_server(uvicorn.Config("app.main:create_app", factory=True, log_level="info"), [sock])


def run_server(config, sockets: list[socket.socket] | None = None) -> None:
    """Run uvicorn with the app loaded first and everything loaded so far frozen out of the
    garbage collector's full passes (``gc.freeze``): a full pass otherwise walks the few
    hundred thousand objects of the app and its libraries, holding every request thread of
    the process meanwhile."""
    import gc

    import uvicorn

    config.load()
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run(sockets=sockets)


def _runs_jobs() -> bool:
    """Whether this server runs the jobs (``CROWDLAB_JOBS_IN_PROCESS``, the default), in
    a worker process of its own; not when jobs run immediately or another worker does."""
    from app.settings import get_settings

    settings = get_settings()
    return settings.jobs_in_process and not settings.jobs_immediate


def _start_worker() -> subprocess.Popen:
    from app.settings import get_settings
    from workers.process import spawn_worker

    settings = get_settings()
    return spawn_worker(settings.worker_threads, nice=settings.worker_nice)


def serve_many(host: str, port: int, processes: int) -> int:
    """Run ``processes`` web processes and the job worker until interrupted; restart any
    that dies."""
    context = multiprocessing.get_context("spawn")
    probe = _listen(host, port)  # fail here, clearly, when the port is taken
    probe.close()
    children: dict[int, multiprocessing.Process] = {}
    stopping = False

    def start(index: int) -> None:
        child = context.Process(target=_serve_one, args=(host, port), name=f"crowdlab-web-{index}")
        child.start()
        children[index] = child

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(processes):
        start(index)
    worker = _start_worker() if _runs_jobs() else None
    try:
        while not stopping:
            time.sleep(0.5)
            for index, child in list(children.items()):
                if not child.is_alive() and not stopping:
                    log.warning(
                        "web process %s ended (%s): starting another", child.pid, child.exitcode
                    )
                    start(index)
            if worker is not None and worker.poll() is not None and not stopping:
                log.warning(
                    "job worker %s ended (%s): starting another", worker.pid, worker.returncode
                )
                worker = _start_worker()
    finally:
        from workers.process import stop_process

        stop_process(worker, timeout=15)
        for child in children.values():
            if child.is_alive():
                child.terminate()
        for child in children.values():
            child.join(timeout=15)
            if child.is_alive():
                child.kill()
    return 0
