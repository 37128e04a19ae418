"""Training progress reports for a callback: fraction done, ETA, latest loss and accuracy."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

ProgressCallback = Callable[[dict[str, Any]], None]

PROGRESS_INTERVAL_S = 0.5


class ProgressReporter:
    """Throttled progress reports with an ETA.

    Args:
        callback: Receives one dict per report (``None`` disables reporting).
        epochs: Planned epochs.
        steps: Optimisation steps per epoch.
    """

    def __init__(self, callback: ProgressCallback | None, epochs: int, steps: int) -> None:
        self.callback = callback
        self.epochs = epochs
        self.steps = steps
        self.total = max(1, epochs * steps)
        self.start = time.perf_counter()
        self.last = -math.inf
        self.val_accuracy: float | None = None
        self.done_before = 0  # steps finished by an earlier, interrupted run (resumed)

    def due(self, step: int) -> bool:
        """Whether a report is due at ``step`` (first, last, or after the interval)."""
        if self.callback is None:
            return False
        return step in (1, self.steps) or time.perf_counter() - self.last >= PROGRESS_INTERVAL_S

    def report(self, epoch: int, step: int, loss: float | None, phase: str = "train") -> None:
        """Send one progress dict; ``phase`` is train, epoch_end, cancelled or done."""
        if self.callback is None:
            return
        now = time.perf_counter()
        self.last = now
        done = (epoch - 1) * self.steps + step
        fraction = 1.0 if phase == "done" else min(done / self.total, 1.0)
        done_now = done - self.done_before
        eta = (
            (now - self.start) / done_now * (self.total - done) if done_now > 0 and phase != "done"
            else 0.0
        )  # fmt: skip
        self.callback(
            {
                "phase": phase,
                "epoch": epoch,
                "epochs": self.epochs,
                "step": step,
                "steps": self.steps,
                "loss": loss,
                "val_accuracy": self.val_accuracy,
                "eta_seconds": round(eta, 1),
                "fraction": round(fraction, 4),
            }
        )
