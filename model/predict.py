"""Prediction from a checkpoint directory: image in, ``[(label, probability), ...]`` out.

A :class:`Predictor` holds an eval-mode model and the checkpoint's eval transform. Each call
keeps its tensors local and runs under ``torch.inference_mode``, so one predictor serves
concurrent requests from several threads; :func:`get_predictor` loads a checkpoint once per
process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.checkpoint import SIDECAR_FILE, CheckpointInfo
from model.data import ImageInput, build_transform, load_image
from model.device import Runtime, make_runtime
from model.factory import load_checkpoint

Prediction = list[tuple[str, float]]


class Predictor:
    """A loaded classifier.

    Args:
        model: Network in eval mode (already on ``runtime.device``).
        info: The checkpoint's sidecar (classes, data config, ...).
        runtime: Device settings.
        batch_size: Largest batch of one forward pass in :meth:`predict_batch`.
    """

    def __init__(
        self, model: nn.Module, info: CheckpointInfo, runtime: Runtime, batch_size: int = 32
    ) -> None:
        self.model = model.eval()
        self.info = info
        self.runtime = runtime
        self.batch_size = batch_size
        self.classes: list[str] = list(info.classes)
        self.transform = build_transform(info.data_config, train=False)
        config = info.train_config
        # multilabel: one sigmoid per tag (probabilities do not sum to 1) and the threshold
        # from which a tag counts as present
        self.multilabel = bool(config is not None and config.multilabel)
        self.threshold = float(config.threshold) if config is not None else 0.5

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], device: str = "auto", batch_size: int = 32
    ) -> Predictor:
        """Load a checkpoint directory written by training.

        Args:
            path: Checkpoint directory (``weights.pt`` + ``checkpoint.json``).
            device: ``auto|cpu|cuda``.
            batch_size: Largest batch of one forward pass.

        Raises:
            model.checkpoint.CheckpointError: for a missing or broken checkpoint.
        """
        runtime = make_runtime(device, compile=False)
        model, info = load_checkpoint(path, device="cpu")
        return cls(runtime.prepare_model(model), info, runtime, batch_size=batch_size)

    def predict(self, image: ImageInput, top_k: int | None = 5) -> Prediction:
        """Classify one image.

        Args:
            image: File path, encoded bytes or a PIL image.
            top_k: Number of classes to return; ``None`` returns them all (summing to 1).

        Returns:
            ``(label, probability)`` pairs, most probable first.

        Raises:
            model.data.BadImageError: when the image cannot be read.
        """
        return self.predict_batch([image], top_k=top_k)[0]

    def predict_batch(
        self, images: Sequence[ImageInput], top_k: int | None = 5
    ) -> list[Prediction]:
        """Classify several images (batched forward passes); one list per image, in order."""
        probs = self.predict_proba(images)
        k = len(self.classes) if top_k is None else max(1, min(int(top_k), len(self.classes)))
        results: list[Prediction] = []
        for row in probs:
            order = np.argsort(-row, kind="stable")[:k]
            results.append([(self.classes[i], float(row[i])) for i in order])
        return results

    def predict_proba(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Full probability matrix ``(len(images), num_classes)`` in float64; rows sum to 1
        (multilabel: each tag's own probability)."""
        if isinstance(images, str | bytes | os.PathLike):
            raise TypeError("predict_proba takes a sequence of images; use predict() for one")
        tensors = [self.transform(load_image(image)) for image in images]
        chunks: list[np.ndarray] = []
        for start in range(0, len(tensors), self.batch_size):
            batch = torch.stack(tensors[start : start + self.batch_size])
            chunks.append(self._forward(batch))
        if not chunks:
            return np.zeros((0, len(self.classes)), dtype=np.float64)
        return np.concatenate(chunks)

    def _forward(self, batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            batch = self.runtime.to_device(batch)
            with self.runtime.autocast():
                logits = self.model(batch)
            logits = logits.double()
            probs = logits.sigmoid() if self.multilabel else logits.softmax(dim=1)
        return probs.cpu().numpy()


_CACHE: dict[tuple[str, str], tuple[int, Predictor]] = {}
_CACHE_LOCK = threading.Lock()


def get_predictor(path: str | os.PathLike[str], device: str = "auto") -> Predictor:
    """Return the process-wide predictor of a checkpoint, loading it on first use.

    Thread-safe: concurrent first calls load the checkpoint once. A checkpoint directory that
    is re-published (its ``checkpoint.json`` replaced) is loaded again on the next call.
    """
    directory = Path(path).resolve()
    key = (str(directory), device)
    version = _sidecar_version(directory)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        predictor = Predictor.from_checkpoint(directory, device=device)
        _CACHE[key] = (version, predictor)
        return predictor


def clear_predictor_cache() -> None:
    """Forget every cached predictor."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _sidecar_version(directory: Path) -> int:
    try:
        return (directory / SIDECAR_FILE).stat().st_mtime_ns
    except OSError:
        return -1  # let from_checkpoint raise its clear error
