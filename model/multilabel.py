"""Multilabel classification: any number of tags per image.

The network has one sigmoid output per tag, trained with binary cross-entropy; a tag is
predicted when its probability reaches the threshold. Evaluation follows Custom Vision's
multilabel figures:

* per tag: **precision** and **recall** at the threshold, and **AP** (average precision over
  the ranking of the tag's probabilities, scikit-learn's definition; ``None`` for a tag with
  no positive image);
* overall: **precision** and **recall** over every (image, tag) decision at the threshold
  (micro-averaged, as Custom Vision reports them), and **mAP**, the mean AP over the tags
  that have positives;
* **co-occurrence**: ``[i][j]`` counts the images tagged ``i`` whose prediction holds ``j``
  (the diagonal is each tag's true positives; off it, which tags are predicted together);
* a **threshold table**: the same precision / recall figures at thresholds 0.05 … 0.95, so a
  page can move a slider without the images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from torch.utils.data import DataLoader, Dataset

from model.data import load_image
from model.metrics import average_precision

MultiItem = tuple[str, list[int]]
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def check_multilabel_items(
    items: Sequence[tuple[Any, Any]], num_classes: int, what: str
) -> list[MultiItem]:
    """``(image, tag indices)`` pairs checked: indices are ints in range (an empty list is an
    image with no tag)."""
    checked: list[MultiItem] = []
    for row, item in enumerate(items):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValueError(f"{what} item {row}: expected (image, tag indices), got {item!r}")
        path, tags = item
        if not isinstance(tags, list | tuple):
            raise ValueError(f"{what} item {row}: tags must be a list of indices, got {tags!r}")
        for tag in tags:
            if isinstance(tag, bool) or not isinstance(tag, int | np.integer):
                raise ValueError(f"{what} item {row}: tag index must be an int, got {tag!r}")
            if not 0 <= int(tag) < num_classes:
                raise ValueError(
                    f"{what} item {row}: tag index {tag} is outside 0..{num_classes - 1}"
                )
        checked.append((str(path), sorted({int(t) for t in tags})))
    return checked


class MultiLabelDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images with a multi-hot float target of ``num_classes`` tags."""

    def __init__(self, items: Sequence[MultiItem], num_classes: int, transform) -> None:
        self.items = list(items)
        self.num_classes = num_classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, tags = self.items[index]
        target = torch.zeros(self.num_classes, dtype=torch.float32)
        if tags:
            target[list(tags)] = 1.0
        return self.transform(load_image(path)), target


def multi_hot(items: Sequence[MultiItem], num_classes: int) -> np.ndarray:
    """The items' tags as an ``(n, num_classes)`` 0/1 matrix."""
    out = np.zeros((len(items), num_classes), dtype=np.int64)
    for row, (_path, tags) in enumerate(items):
        out[row, list(tags)] = 1
    return out


@torch.inference_mode()
def predict_multilabel_loader(
    model: nn.Module, loader: DataLoader[Any], runtime: Any, num_classes: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(y_true, y_prob, mean_loss)``: multi-hot truth ``(n, k)``, sigmoid probabilities
    ``(n, k)`` and the mean binary cross-entropy per image (summed over tags)."""
    from model.device import eval_mode

    truths: list[torch.Tensor] = []
    probs: list[torch.Tensor] = []
    loss_sum = torch.zeros((), dtype=torch.float64, device=runtime.device)
    with eval_mode(model):
        for images, targets in loader:
            images = runtime.to_device(images)
            targets = targets.to(runtime.device)
            with runtime.autocast():
                logits = model(images)
            logits = logits.float()
            loss = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
            loss_sum += loss.double()
            probs.append(logits.sigmoid().cpu())
            truths.append(targets.cpu())
    if not truths:
        empty = np.zeros((0, num_classes))
        return empty.astype(np.int64), empty.astype(np.float32), 0.0
    y_true = torch.cat(truths).numpy().round().astype(np.int64)
    return y_true, torch.cat(probs).numpy(), float(loss_sum.item()) / len(y_true)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def at_threshold(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> dict[str, Any]:
    """Per-tag and overall (micro) precision and recall of the decisions ``p >= threshold``.

    A tag never predicted has precision 0 (Custom Vision shows 0 %); never present, recall 0.
    """
    predicted = y_prob >= threshold
    truth = y_true.astype(bool)
    tp = (predicted & truth).sum(axis=0)
    n_pred = predicted.sum(axis=0)
    n_true = truth.sum(axis=0)
    return {
        "threshold": float(threshold),
        "precision": _ratio(tp.sum(), n_pred.sum()),
        "recall": _ratio(tp.sum(), n_true.sum()),
        "per_tag_precision": [_ratio(t, p) for t, p in zip(tp, n_pred, strict=True)],
        "per_tag_recall": [_ratio(t, n) for t, n in zip(tp, n_true, strict=True)],
    }


def co_occurrence(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> list[list[int]]:
    """``[i][j]``: images tagged ``i`` whose prediction (at the threshold) holds tag ``j``."""
    predicted = (y_prob >= threshold).astype(np.int64)
    return (y_true.astype(np.int64).T @ predicted).tolist()


def multilabel_metrics(
    y_true: ArrayLike, y_prob: ArrayLike, classes: Sequence[str], threshold: float = 0.5
) -> dict[str, Any]:
    """Every evaluation figure of a multilabel classifier, as a JSON-ready dict."""
    truth = np.asarray(y_true, dtype=np.int64)
    prob = np.asarray(y_prob, dtype=np.float64)
    names = [str(c) for c in classes]
    if truth.ndim != 2 or truth.shape != prob.shape or truth.shape[1] != len(names):
        raise ValueError(
            f"y_true {truth.shape} and y_prob {prob.shape} must both be (n, {len(names)})"
        )
    figures = at_threshold(truth, prob, threshold)
    ap = [average_precision(truth[:, k], prob[:, k]) for k in range(len(names))]
    known = [a for a in ap if a is not None]
    per_tag = [
        {
            "class": name,
            "precision": figures["per_tag_precision"][k],
            "recall": figures["per_tag_recall"][k],
            "f1": _ratio(
                2 * figures["per_tag_precision"][k] * figures["per_tag_recall"][k],
                figures["per_tag_precision"][k] + figures["per_tag_recall"][k],
            ),
            "average_precision": ap[k],
            "support": int(truth[:, k].sum()),
            "predicted": int((prob[:, k] >= threshold).sum()),
            "precision_at_threshold": figures["per_tag_precision"][k],
            "recall_at_threshold": figures["per_tag_recall"][k],
        }
        for k, name in enumerate(names)
    ]
    table = []
    for t in THRESHOLDS:
        row = at_threshold(truth, prob, t)
        table.append(
            {
                "threshold": t,
                "precision": row["precision"],
                "recall": row["recall"],
                "per_tag": [
                    [p, r]
                    for p, r in zip(row["per_tag_precision"], row["per_tag_recall"], strict=True)
                ],
            }
        )
    exact = ((prob >= threshold) == truth.astype(bool)).all(axis=1)
    mean_ap = float(np.mean(known)) if known else None
    matrix = co_occurrence(truth, prob, threshold)
    return {
        "multilabel": True,
        "num_samples": int(len(truth)),
        "classes": names,
        "precision": figures["precision"],
        "recall": figures["recall"],
        "map": mean_ap,
        "mean_average_precision": mean_ap,
        # the share of images whose predicted tag set is exactly right
        "accuracy": float(exact.mean()) if len(truth) else 0.0,
        "per_class": per_tag,
        "co_occurrence": matrix,
        "confusion_matrix": matrix,  # what the pages and the figure draw: co-occurrence
        "threshold": {
            "threshold": float(threshold),
            "precision": figures["precision"],
            "recall": figures["recall"],
            "coverage": float((prob >= threshold).any(axis=1).mean()) if len(truth) else 0.0,
        },
        "threshold_table": table,
    }


def tags_above(
    probabilities: Sequence[tuple[str, float]], threshold: float
) -> list[tuple[str, float]]:
    """The ``(tag, probability)`` pairs at or above the threshold, most probable first."""
    return sorted(
        ((tag, p) for tag, p in probabilities if p >= threshold), key=lambda x: (-x[1], x[0])
    )
