"""The production shape under faults, short: ``bench/soak.py`` for about a minute.

3 web processes on PostgreSQL, 2 workers on their own Redis, media on an S3 server; one of
each fault (a web process and two workers killed with ``kill -9``, every database
connection terminated, Redis and S3 stopped for 10 s) while labelers, uploads, aggregations
and a training run. Skipped, saying why, where PostgreSQL, redis-server or the S3 server
(``moto[server]``) is missing. ``SOAK_DURATION`` (seconds) lengthens it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.soak import DEFAULT_PG, missing_services, violations  # noqa: E402

pytestmark = pytest.mark.soak


def _soak_database() -> str:
    """The soak's own database, on the tests' PostgreSQL server when one is configured."""
    if os.environ.get("SOAK_DATABASE_URL"):
        return os.environ["SOAK_DATABASE_URL"]
    test_url = os.environ.get("CROWDLAB_TEST_DATABASE_URL")
    if test_url and test_url.startswith("postgresql"):
        url = sa.make_url(test_url)
        return url.set(database=f"{url.database}_soak").render_as_string(hide_password=False)
    return DEFAULT_PG


def test_the_production_shape_keeps_every_invariant_under_faults():
    database = _soak_database()
    reason = missing_services(database)
    if reason:
        pytest.skip(f"the soak cannot run here: {reason}")
    duration = os.environ.get("SOAK_DURATION", "60")
    command = [sys.executable, str(ROOT / "bench" / "soak.py"), "--duration", duration,
               "--drain", "120", "--labelers", "12", "--in-flight", "6", "--tasks", "5000",
               "--database-url", database]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("CROWDLAB_")}  # the soak's own
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=float(duration) + 400)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("{"), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1])
    print(lines[-1])  # the figures, in the test's output (-s or on failure)
    broken = violations(result)
    assert not broken, f"{broken}\n{json.dumps(result, indent=1)}\n{done.stderr[-2000:]}"
    assert done.returncode == 0
    assert result["suites_submitted"] > 0 and result["uploads"]["created"] > 0
    assert result["jobs"]["succeeded"] > 0
