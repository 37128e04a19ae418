"""Periodic maintenance: expire overdue suites, auto-accept after the review period,
retry or fail jobs whose worker stopped.

Each step is registered by the service that owns it, so this module stays small.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("crowdlab.periodic")

_STEPS: list[tuple[str, Callable[[], object]]] = []


def periodic_step(name: str) -> Callable:
    """Register a function to run once a minute."""

    def decorator(func: Callable[[], object]) -> Callable[[], object]:
        _STEPS.append((name, func))
        return func

    return decorator


def run_periodic() -> dict[str, object]:
    """Run every registered step (``workers.queue`` imports the modules that register them);
    one failing step does not stop the others."""
    results: dict[str, object] = {}
    for name, func in _STEPS:
        try:
            results[name] = func()
        except Exception:  # noqa: BLE001
            log.exception("periodic step %s failed", name)
            results[name] = "failed"
    return results
