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
    resource tracker)."""
    return [child for child, args in _children(pid) if "resource_tracker" not in args]


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree")
def test_two_web_processes_share_the_port_one_runs_jobs_and_a_dead_one_is_replaced(
    tmp_path, settings
):
    port = _free_port()
    data = tmp_path / "serve-data"
    env = {
        **os.environ,
        "CROWDLAB_DATA_DIR": str(data),
        "CROWDLAB_DATABASE_URL": f"sqlite:///{data / 'crowdlab.db'}",
        "CROWDLAB_JOBS_IN_PROCESS": "true",
        "CROWDLAB_JOBS_IMMEDIATE": "false",
        "PYTHONPATH": str(REPO_ROOT),
    }
    server = subprocess.Popen(
        [sys.executable, "-c", "from app.cli import main; main()", "serve", "--port", str(port),
         "--processes", "2"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/login"
    try:
        _wait_until(lambda: _answers(url) == 200)
        web = _wait_until(lambda: (w := _web_processes(server.pid)) and len(w) == 2 and w)

        # exactly one of them started the job worker (``crowdlab worker`` as a child)
        def workers() -> list[int]:
            return [sum("'worker'" in args for _, args in _children(pid)) for pid in web]

        assert sorted(_wait_until(lambda: (w := workers()) and sum(w) and w)) == [0, 1]

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
