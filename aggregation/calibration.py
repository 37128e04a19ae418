"""Calibration of the confidence of a chosen label: measure it (ECE) and fix it (Platt).

numpy only, so importing this costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregation.matrix import FloatArray

_CLIP = 1e-3
"""Confidences are clipped to [0.001, 0.999] before the logit: beyond, EM posteriors say little."""


def expected_calibration_error(
    confidence: FloatArray, correct: FloatArray, bins: int = 10
) -> float:
    """Expected calibration error with ``bins`` equal-width bins over [0, 1].

    ``sum_b (n_b / n) * |accuracy_b - mean confidence_b|``; 0 for no tasks.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(confidence) == 0:
        return 0.0
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    conf = np.bincount(which, confidence, minlength=bins)
    hit = np.bincount(which, correct, minlength=bins)
    return float(np.abs(hit - conf).sum() / len(confidence))


def reliability_bins(
    confidence: FloatArray, correct: FloatArray, bins: int = 10
) -> list[dict[str, float]]:
    """Per non-empty bin: ``low, high, count, confidence`` (mean) and ``accuracy``."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            out.append(
                {
                    "low": b / bins,
                    "high": (b + 1) / bins,
                    "count": float(mask.sum()),
                    "confidence": float(confidence[mask].mean()),
                    "accuracy": float(correct[mask].mean()),
                }
            )
    return out


def _logit(p: FloatArray) -> FloatArray:
    p = np.clip(p, _CLIP, 1.0 - _CLIP)
    return np.log(p) - np.log1p(-p)


@dataclass
class PlattCalibrator:
    """``p' = sigmoid(a * logit(p) + b)`` fitted by penalised maximum likelihood.

    A Gaussian prior pulls ``(a, b)`` towards the identity ``(1, 0)`` (penalty
    ``strength / 2 * ((a - 1)^2 + b^2)``), so that a handful of control tasks cannot bend the
    map far; with many it follows the data. Fitted by Newton's method (2 x 2 system).

    Paper: J. Platt, "Probabilistic Outputs for Support Vector Machines", 1999.

    One right and one wrong pseudo-answer at the median confidence are added (Laplace's
    rule), so that ten control tasks that all came out right do not make every label certain.

    Args:
        strength: Prior precision on ``a - 1`` and ``b``.
        floor: Lowest calibrated value (``1 / n_labels`` for a chosen label).
        pseudo: Pairs of (right, wrong) pseudo-answers added at the median confidence.
    """

    strength: float = 8.0
    floor: float = 0.0
    pseudo: int = 1
    a: float = 1.0
    b: float = 0.0

    def fit(self, confidence: FloatArray, correct: FloatArray) -> PlattCalibrator:
        """Fits ``a, b`` to (confidence, was the label right) pairs."""
        confidence = np.asarray(confidence, dtype=np.float64)
        y = np.asarray(correct, dtype=np.float64)
        if self.pseudo and len(confidence):
            middle = np.full(2 * self.pseudo, float(np.median(confidence)))
            confidence = np.concatenate([confidence, middle])
            y = np.concatenate([y, np.tile([1.0, 0.0], self.pseudo)])
        x = _logit(confidence)
        lam = self.strength

        def loss(a: float, b: float) -> float:
            z = a * x + b
            nll = np.logaddexp(0.0, z) - y * z
            return float(nll.sum()) + lam / 2 * ((a - 1.0) ** 2 + b * b)

        a, b = 1.0, 0.0
        current = loss(a, b)
        for _ in range(100):
            p = 0.5 * (1.0 + np.tanh(0.5 * (a * x + b)))  # sigmoid without overflow
            r = p - y
            grad = np.array([r @ x + lam * (a - 1.0), r.sum() + lam * b])
            w = p * (1.0 - p)
            hess = np.array([[w @ (x * x) + lam, w @ x], [w @ x, w.sum() + lam]])
            step = np.linalg.solve(hess, grad)
            t = 1.0
            while t > 1e-6:  # backtracking: Newton with a step that lowers the loss
                new = loss(a - t * step[0], b - t * step[1])
                if new <= current:
                    break
                t /= 2
            if t <= 1e-6:
                break
            a, b = a - t * step[0], b - t * step[1]
            gain, current = current - new, new
            if gain < 1e-10:
                break
        self.a, self.b = float(a), float(b)
        return self

    def __call__(self, confidence: FloatArray) -> FloatArray:
        """Calibrated confidence, in ``[floor, 1]``."""
        z = self.a * _logit(np.asarray(confidence, dtype=np.float64)) + self.b
        return np.clip(0.5 * (1.0 + np.tanh(0.5 * z)), self.floor, 1.0)
