"""PNG pictures of a confusion matrix and of training curves.

Uses matplotlib's object API with the Agg canvas directly: no pyplot, no global backend
switch, so it is safe in a web process and from several threads.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from model.checkpoint import atomic_write_bytes


def plot_confusion_matrix(
    cm: Sequence[Sequence[int]] | np.ndarray,
    classes: Sequence[str],
    path: str | os.PathLike[str],
    *,
    normalize: bool = False,
    title: str = "Confusion matrix",
) -> str:
    """Render a confusion matrix (rows true, columns predicted) to a PNG file.

    Args:
        cm: Square matrix of counts.
        classes: Class names, in matrix order.
        path: Where to write the PNG (written atomically).
        normalize: Show each row as shares of its true class instead of counts.
        title: Figure title.

    Returns:
        The path written.
    """
    matrix = np.asarray(cm, dtype=np.float64)
    k = len(classes)
    if matrix.shape != (k, k):
        raise ValueError(f"confusion matrix has shape {matrix.shape}, expected ({k}, {k})")
    if normalize:
        rows = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)

    side = min(4.0 + 0.45 * k, 24.0)
    fig = Figure(figsize=(side, side * 0.9), dpi=100)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set(
        xticks=range(k),
        yticks=range(k),
        xlabel="Predicted class",
        ylabel="True class",
        title=title,
    )
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    if k <= 30:
        peak = matrix.max() if matrix.size else 0.0
        for (i, j), value in np.ndenumerate(matrix):
            text = f"{value:.2f}" if normalize else f"{int(value)}"
            colour = "white" if peak and value > peak / 2 else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_training_curves(history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> str:
    """Render loss and accuracy per epoch to a PNG file.

    Args:
        history: One dict per epoch with ``epoch``, ``train_loss`` and optionally
            ``val_loss`` and ``val_accuracy`` (as kept in ``TrainResult.history``).
        path: Where to write the PNG (written atomically).

    Returns:
        The path written.
    """
    epochs = [int(h["epoch"]) for h in history]
    fig = Figure(figsize=(10, 4), dpi=100)
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [h.get("train_loss") for h in history], marker="o", label="train")
    val_loss = [
        (e, h["val_loss"])
        for e, h in zip(epochs, history, strict=True)
        if h.get("val_loss") is not None
    ]
    if val_loss:
        loss_ax.plot(*zip(*val_loss, strict=True), marker="o", label="validation")
    loss_ax.set(title="Loss", xlabel="Epoch", ylabel="Cross-entropy")
    loss_ax.legend()
    loss_ax.grid(alpha=0.3)

    val_acc = [
        (e, h["val_accuracy"])
        for e, h in zip(epochs, history, strict=True)
        if h.get("val_accuracy") is not None
    ]
    if val_acc:
        acc_ax.plot(*zip(*val_acc, strict=True), marker="o", color="tab:green")
    else:
        acc_ax.text(
            0.5, 0.5, "no validation set", ha="center", va="center", transform=acc_ax.transAxes
        )
    acc_ax.set(title="Validation accuracy", xlabel="Epoch", ylabel="Accuracy", ylim=(0, 1.02))
    acc_ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Figure, path: str | os.PathLike[str]) -> str:
    canvas = FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return os.fspath(path)
