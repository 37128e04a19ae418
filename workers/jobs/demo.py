"""The ``demo`` job: fill an empty instance with demo data (the first-start checkbox)."""

from __future__ import annotations

from app.db.engine import session_scope
from app.services.demo.scenario import run_demo
from workers.registry import job


@job("demo")
def demo(job_id: int, payload: dict, progress) -> dict:
    """Run the demo scenario; the result names the accounts (no prediction key: it is public)."""
    with session_scope() as session:
        result = run_demo(
            session,
            labelers=int(payload.get("labelers", 6)),
            train=bool(payload.get("train", True)),
            progress=progress,
        )
    data = result.as_dict()
    data["prediction_key"] = None
    return data
