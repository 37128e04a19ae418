"""``crowdlab serve`` with several web processes on one port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from app.cli_commands.serve import MAX_AUTO_PROCESSES, process_count
from app.settings import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[tuple[int, str]]:
    out = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    return [(int(line.split(None, 1)[0]), line.split(None, 1)[1]) for line in out.splitlines()]


def _web_processes(pid: int) -> list[int]:
    """The server's web processes: its children running the app (not multiprocessing's
    resource tracker, not the job worker)."""
    return [
        child
        for child, args in _children(pid)
        if "resource_tracker" not in args and "'worker'" not in args
    ]


def _workers(pid: int) -> list[int]:
    """The server's job workers (``crowdlab worker`` children)."""
    return [child for child, args in _children(pid) if "'worker'" in args]


def _wait_until(check, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.5)
    raise AssertionError("gave up waiting")


def _answers(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return None


def test_auto_process_count_follows_the_cores():
    assert process_count(3) == 3
    assert 1 <= process_count(0) <= MAX_AUTO_PROCESSES


def _serve(port: int, **env: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    return subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "serve", "--port", str(port),
         "--processes", "2"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree")
def test_two_web_processes_share_the_port_and_a_dead_one_is_replaced(tmp_path, settings):
    port = _free_port()
    data = tmp_path / "serve-data"
    server = _serve(
        port,
        CROWDLAB_DATA_DIR=str(data),
        CROWDLAB_DATABASE_URL=f"sqlite:///{data / 'crowdlab.db'}",
        CROWDLAB_JOBS_IN_PROCESS="true",
        CROWDLAB_JOBS_IMMEDIATE="false",
    )
    url = f"http://127.0.0.1:{port}/login"
    try:
        _wait_until(lambda: _answers(url) == 200)
        web = _wait_until(lambda: (w := _web_processes(server.pid)) and len(w) == 2 and w)
        # the jobs run in a worker of their own, not in (or under) a web process
        assert len(_wait_until(lambda: _workers(server.pid))) == 1
        assert not any(_workers(pid) for pid in web)

        os.kill(web[1], signal.SIGKILL)
        replaced = _wait_until(
            lambda: (w := _web_processes(server.pid)) and len(w) == 2 and web[1] not in w and w
        )
        assert web[0] in replaced
        assert _wait_until(lambda: all(_answers(url) == 200 for _ in range(10)))
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output
    assert "2 web processes" in output
    assert "starting another" in output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree")
def test_jobs_run_in_the_servers_worker_process_which_is_restarted_when_killed(
    session, requester, settings, monkeypatch
):
    from app.db.engine import new_session
    from app.db.models import Job
    from app.services.projects import uploads
    from app.settings import get_settings
    from tests.builders.pools import make_pool
    from tests.conftest import _clear_caches

    # this test process submits jobs to the queue the server's worker consumes
    monkeypatch.setenv("CROWDLAB_JOBS_IMMEDIATE", "false")
    monkeypatch.setenv("CROWDLAB_UPLOAD_JOB_THRESHOLD", "1")
    _clear_caches()
    import workers.queue  # noqa: F401  (installs the queue that services submit to)

    pool = make_pool(session, requester)
    port = _free_port()
    server = _serve(port, CROWDLAB_JOBS_IN_PROCESS="true")

    def run_an_upload(name: str) -> Job:
        tsv = f"INPUT:image\nhttps://img.example/{name}.png\n".encode()
        outcome = uploads.submit_upload(
            session, requester=requester, pool_id=pool.id, kind="tsv", files=[("a.tsv", tsv)]
        )
        assert outcome.job is not None

        def finished() -> Job | None:
            with new_session(write=False) as s:
                job = s.get(Job, outcome.job.id)
                return job if job.status in ("succeeded", "failed") else None

        job = _wait_until(finished, 90)
        assert job.status == "succeeded", job.error
        return job

    try:
        _wait_until(lambda: _answers(f"http://127.0.0.1:{port}/login") == 200)
        (worker,) = _wait_until(lambda: _workers(server.pid))
        web = _web_processes(server.pid)
        assert len(web) == 2 and worker not in web
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        lower = min(19, mine + get_settings().worker_nice)
        assert os.getpriority(os.PRIO_PROCESS, worker) == lower  # pages first
        assert f":{worker}:" in (run_an_upload("first").worker or "")

        os.kill(worker, signal.SIGKILL)  # a crash, as kill -9 does
        (again,) = _wait_until(lambda: (w := _workers(server.pid)) and worker not in w and w)
        assert f":{again}:" in (run_an_upload("second").worker or "")
        assert sorted(_web_processes(server.pid)) == sorted(web)  # the pages stayed up
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert server.returncode == 0, output
    assert "job worker" in output and "starting another" in output
