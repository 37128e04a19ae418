"""Evaluation of a model on labelled images: probabilities in, metrics out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from model.data import ImageListDataset, build_transform, check_items
from model.device import Runtime, eval_mode, make_runtime
from model.factory import load_checkpoint
from model.metrics import compute_metrics


@torch.inference_mode()
def predict_loader(
    model: nn.Module, loader: DataLoader[Any], runtime: Runtime, num_classes: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Run a model over a labelled loader.

    Returns:
        ``(y_true, y_prob, mean_loss)``: class indices ``(n,)``, float32 probabilities
        ``(n, num_classes)`` and the mean cross-entropy.
    """
    labels: list[torch.Tensor] = []
    probs: list[torch.Tensor] = []
    loss_sum = torch.zeros((), dtype=torch.float64, device=runtime.device)
    with eval_mode(model):
        for images, targets in loader:
            images = runtime.to_device(images)
            targets = targets.to(runtime.device, non_blocking=runtime.pin_memory)
            with runtime.autocast():
                logits = model(images)
            logits = logits.float()
            loss_sum += nn.functional.cross_entropy(logits, targets, reduction="sum").double()
            probs.append(logits.softmax(dim=1).cpu())
            labels.append(targets.cpu())
    if not labels:
        return np.zeros(0, dtype=np.int64), np.zeros((0, num_classes), np.float32), 0.0
    y_true = torch.cat(labels).numpy().astype(np.int64)
    y_prob = torch.cat(probs).numpy()
    return y_true, y_prob, float(loss_sum.item()) / len(y_true)


def evaluate(
    checkpoint_dir: str | os.PathLike[str],
    items: Sequence[tuple[str | os.PathLike[str], int | str]],
    *,
    threshold: float = 0.5,
    batch_size: int = 64,
    device: str = "auto",
    num_workers: int | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint on labelled images.

    Args:
        checkpoint_dir: A directory written by ``model.train.train`` (or ``save_checkpoint``).
        items: ``(path, label)`` pairs; a label is a class index or a class name of the
            checkpoint.
        threshold: Probability threshold for the Custom Vision style figures.
        batch_size: Images per forward pass.
        device: ``auto|cpu|cuda``.
        num_workers: DataLoader workers (``None``: chosen for the device).

    Returns:
        The dict of ``model.metrics.compute_metrics`` plus ``loss`` (mean cross-entropy).

    Raises:
        ValueError: for an unknown class name or out-of-range index.
        model.data.BadImageError: for an unreadable image (naming it).
        model.checkpoint.CheckpointError: for a missing or broken checkpoint.
    """
    runtime = make_runtime(device, num_workers=num_workers)
    model, info = load_checkpoint(Path(checkpoint_dir), device="cpu")
    model = runtime.prepare_model(model)
    index = {name: i for i, name in enumerate(info.classes)}
    resolved: list[tuple[Any, Any]] = []
    for row, (path, label) in enumerate(items):
        if isinstance(label, str):
            if label not in index:
                raise ValueError(
                    f"item {row}: class {label!r} is not one of the checkpoint's classes "
                    f"({', '.join(info.classes)})"
                )
            label = index[label]
        resolved.append((path, label))
    checked = check_items(resolved, info.num_classes, "evaluation")
    dataset = ImageListDataset(checked, build_transform(info.data_config, train=False))
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=runtime.num_workers,
        pin_memory=runtime.pin_memory,
    )
    y_true, y_prob, loss = predict_loader(model, loader, runtime, info.num_classes)
    metrics = compute_metrics(y_true, y_prob, info.classes, threshold=threshold)
    metrics["loss"] = loss
    return metrics
