"""Real concurrency for tests: threads released together, each on its own connection."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from app.db.engine import new_session
from app.errors import CrowdlabError


def run_together(count: int, func):
    """Run ``func(i)`` in ``count`` threads released at the same instant; their results."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        return func(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def in_own_session(func):
    """``func(session)`` on a writing session of its own; a refusal is returned, not raised."""
    session = new_session(write=True)
    try:
        return func(session)
    except CrowdlabError as exc:
        session.rollback()
        return exc
    finally:
        session.close()
