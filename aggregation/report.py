"""What a fitted model can say about itself: method used, calibration, labelers' accuracy.

A plain JSON-ready dict, so that the product can keep it beside a run and show it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aggregation.base import Aggregator
from aggregation.calibration import reliability_bins

Z95 = 1.959963984540054


def wilson_interval(
    hits: np.ndarray, n: np.ndarray, z: float = Z95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion ``hits / n`` (``hits`` may be soft counts)."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1e-12)
    p = np.asarray(hits, dtype=np.float64) / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def quality_report(model: Aggregator, max_workers: int = 500) -> dict[str, Any]:
    """The report of a fitted model.

    Returns:
        ``method_used`` (``auto``'s choice, else the class's), ``calibrated``, ``heldout_ece``
        and ``heldout_ece_raw`` (cross-fitted, on control tasks; None when uncalibrated),
        ``reliability`` (bins of the held-out confidence: ``low, high, count, confidence,
        accuracy``), ``scores`` (``auto``'s per-method held-out accuracy and log-likelihood)
        and ``workers``: per labeler ``worker, answers, accuracy, low, high``: the expected
        share of their answers that are right under the posteriors, with a 95% Wilson interval
        over their number of answers (the ``max_workers`` with the lowest ``low`` first).
    """
    calibrated = bool(getattr(model, "calibrated_", False))
    used = getattr(model, "method_", None) or type(model).__name__
    scores = getattr(model, "scores_", {}) or {}
    chosen = scores.get(used, {})
    report: dict[str, Any] = {
        "method_used": used,
        "calibrated": calibrated,
        "heldout_ece": chosen.get("ece") if calibrated else None,
        "heldout_ece_raw": chosen.get("ece_raw") if calibrated else None,
        "known_count": int(len(getattr(model, "heldout_correct_", ()))),
        "reliability": (
            reliability_bins(model.heldout_confidence_, model.heldout_correct_)  # type: ignore[attr-defined]
            if calibrated
            else []
        ),
        "scores": {k: {m: float(v) for m, v in s.items()} for k, s in scores.items()},
        "workers": [],
    }
    m = model.matrix_
    if m.n_workers:
        hits = np.bincount(m.worker, model.posterior_[m.task, m.label], minlength=m.n_workers)
        n = m.worker_counts
        low, high = wilson_interval(hits, n)
        order = np.argsort(low, kind="stable")[:max_workers]
        report["workers"] = [
            {
                "worker": str(m.workers[i]),
                "answers": int(n[i]),
                "accuracy": float(hits[i] / max(n[i], 1.0)),
                "low": float(low[i]),
                "high": float(high[i]),
            }
            for i in order
        ]
    return report
