"""``crowdlab serve``: the web server, in one process or several on one port.

Several processes each bind the port with ``SO_REUSEPORT``, so the kernel spreads the
connections over them (a single shared socket would hand a keep-alive client's every
request to whichever process woke first). The first process also runs the job worker, as
one process does; this parent only starts the processes, starts again one that died, and
stops them all on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
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


def _serve_one(host: str, port: int, run_jobs: bool) -> None:
    """One web process: its own socket on the shared port; ``run_jobs``: it also starts the
    job worker (exactly one process does)."""
    import uvicorn

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with SIGTERM
    if not run_jobs:  # (read when the app's settings are first loaded, below)
        os.environ["CROWDLAB_JOBS_IN_PROCESS"] = "false"
    sock = _listen(host, port)
    config = uvicorn.Config("app.main:create_app", factory=True, log_level="info")
    uvicorn.Server(config).run(sockets=[sock])


def serve_many(host: str, port: int, processes: int) -> int:
    """Run ``processes`` web processes until interrupted; restart any that dies."""
    context = multiprocessing.get_context("spawn")
    probe = _listen(host, port)  # fail here, clearly, when the port is taken
    probe.close()
    children: dict[int, multiprocessing.Process] = {}
    stopping = False

    def start(index: int) -> None:
        child = context.Process(
            target=_serve_one, args=(host, port, index == 0), name=f"crowdlab-web-{index}"
        )
        child.start()
        children[index] = child

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(processes):
        start(index)
    try:
        while not stopping:
            time.sleep(0.5)
            for index, child in list(children.items()):
                if not child.is_alive() and not stopping:
                    log.warning(
                        "web process %s ended (%s): starting another", child.pid, child.exitcode
                    )
                    start(index)
    finally:
        for child in children.values():
            if child.is_alive():
                child.terminate()
        for child in children.values():
            child.join(timeout=15)
            if child.is_alive():
                child.kill()
    return 0
