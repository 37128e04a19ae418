"""Classification metrics from true labels and predicted probabilities; pure NumPy.

Conventions (they match scikit-learn where scikit-learn has the figure):

* Confusion matrix rows are true classes, columns predicted classes.
* Precision, recall and F1 are 0 when undefined (no predictions, no support).
* Macro figures average the classes that occur in ``y_true`` or in the top-1 predictions.
* Average precision is the step-wise area under the one-vs-rest precision-recall curve
  (scikit-learn's ``average_precision_score``); it is ``None`` for a class without positives,
  and the mean over classes (``mean_average_precision``) skips those.
* Threshold figures follow Custom Vision: a prediction counts only when its top probability
  is at least ``threshold``. Precision is the share of counted predictions that are right;
  recall is the share of all images that got a counted, right prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> NDArray[np.int64]:
    """Count ``(true, predicted)`` pairs; rows are true classes, columns predicted ones."""
    t = _as_labels(y_true, num_classes, "y_true")
    p = _as_labels(y_pred, num_classes, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def per_class_from_confusion(cm: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """Precision, recall, F1 and support per class from a confusion matrix."""
    counts: NDArray[np.float64] = np.asarray(cm, dtype=np.float64)
    tp = np.diag(counts)
    predicted = counts.sum(axis=0)
    support = counts.sum(axis=1)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def average_precision(y_true_binary: ArrayLike, scores: ArrayLike) -> float | None:
    """Step-wise area under the precision-recall curve of one binary problem.

    Returns:
        The average precision, or ``None`` when there is no positive example.
    """
    y = np.asarray(y_true_binary, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    n_pos = int(y.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # The last index of each run of equal scores: one precision/recall point per threshold.
    distinct = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y)[distinct]
    fps = distinct + 1 - tps
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def threshold_metrics(y_true: ArrayLike, y_prob: ArrayLike, threshold: float) -> dict[str, Any]:
    """Custom Vision style precision/recall at a probability threshold.

    Returns:
        ``threshold``, ``precision``, ``recall``, ``coverage`` (share of images whose top
        probability reaches the threshold) and per-class ``precision``/``recall`` arrays
        under ``per_class_precision`` / ``per_class_recall``.
    """
    prob = _as_probabilities(y_prob)
    n, k = prob.shape
    t = _as_labels(y_true, k, "y_true")
    if t.size != n:
        raise ValueError(f"y_true has {t.size} labels but y_prob has {n} rows")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    pred = prob.argmax(axis=1)
    counted = prob.max(axis=1) >= threshold
    correct = counted & (pred == t)
    predicted_per_class = np.bincount(pred[counted], minlength=k).astype(np.float64)
    correct_per_class = np.bincount(pred[correct], minlength=k).astype(np.float64)
    support = np.bincount(t, minlength=k).astype(np.float64)
    return {
        "threshold": float(threshold),
        "precision": _scalar_divide(int(correct.sum()), int(counted.sum())),
        "recall": _scalar_divide(int(correct.sum()), n),
        "coverage": _scalar_divide(int(counted.sum()), n),
        "per_class_precision": _safe_divide(correct_per_class, predicted_per_class),
        "per_class_recall": _safe_divide(correct_per_class, support),
    }


def compute_metrics(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    classes: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """All evaluation figures of a multi-class classifier, as a JSON-ready dict.

    Args:
        y_true: True class indices, shape ``(n,)``.
        y_prob: Predicted probabilities, shape ``(n, num_classes)``; rows should sum to 1.
        classes: Class names (default ``"0"``, ``"1"``, ...).
        threshold: Probability threshold of the Custom Vision style figures.

    Returns:
        ``num_samples``, ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1``,
        ``mean_average_precision``, ``classes``, ``per_class`` (one dict per class: ``class``,
        ``precision``, ``recall``, ``f1``, ``average_precision``, ``support``,
        ``precision_at_threshold``, ``recall_at_threshold``), ``confusion_matrix`` (list of
        rows) and ``threshold`` (``threshold``, ``precision``, ``recall``, ``coverage``).
    """
    prob = _as_probabilities(y_prob)
    n, k = prob.shape
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} probability columns")
    t = _as_labels(y_true, k, "y_true")
    if t.size != n:
        raise ValueError(f"y_true has {t.size} labels but y_prob has {n} rows")
    pred = prob.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    cm = confusion_matrix(t, pred, k)
    pc = per_class_from_confusion(cm)
    ap = [average_precision(t == c, prob[:, c]) for c in range(k)]
    at_threshold = threshold_metrics(t, prob, threshold)
    present = (pc["support"] > 0) | (cm.sum(axis=0) > 0)
    known_ap = [v for v in ap if v is not None]

    per_class = [
        {
            "class": names[c],
            "precision": float(pc["precision"][c]),
            "recall": float(pc["recall"][c]),
            "f1": float(pc["f1"][c]),
            "average_precision": ap[c],
            "support": int(pc["support"][c]),
            "precision_at_threshold": float(at_threshold["per_class_precision"][c]),
            "recall_at_threshold": float(at_threshold["per_class_recall"][c]),
        }
        for c in range(k)
    ]
    return {
        "num_samples": int(n),
        "accuracy": _scalar_divide(int(np.trace(cm)), n),
        "macro_precision": _masked_mean(pc["precision"], present),
        "macro_recall": _masked_mean(pc["recall"], present),
        "macro_f1": _masked_mean(pc["f1"], present),
        "mean_average_precision": float(np.mean(known_ap)) if known_ap else None,
        "classes": names,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "threshold": {
            key: at_threshold[key] for key in ("threshold", "precision", "recall", "coverage")
        },
    }


def _as_labels(values: ArrayLike, num_classes: int, name: str) -> NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"{name} holds class indices outside 0..{num_classes - 1}")
    return arr


def _as_probabilities(values: ArrayLike) -> NDArray[np.float64]:
    prob = np.asarray(values, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[1] < 1:
        raise ValueError(f"y_prob must have shape (n, num_classes), got {prob.shape}")
    if not np.all(np.isfinite(prob)):
        raise ValueError("y_prob holds NaN or infinite values")
    return prob


def _safe_divide(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _scalar_divide(num: int, den: int) -> float:
    return float(num / den) if den else 0.0


def _masked_mean(values: NDArray[np.float64], mask: NDArray[np.bool_]) -> float:
    return float(values[mask].mean()) if mask.any() else 0.0
