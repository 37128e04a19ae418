"""Checkpoint directories: a state dict plus a JSON sidecar that says how to use it.

Layout of a checkpoint directory::

    weights.pt             model state dict (torch.save; loaded with weights_only=True)
    checkpoint.json        sidecar: arch, classes, data config, TrainConfig, metrics, history
    confusion_matrix.png   written by training when there is a validation set
    training_curves.png    written by training

Every file is written to a temporary file in the same directory and moved into place with
``os.replace``, so a reader never sees half a file. The sidecar is written last: a directory
with a ``checkpoint.json`` is complete. Nothing here needs a database.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.config import TrainConfig
from model.data import DataConfig

WEIGHTS_FILE = "weights.pt"
SIDECAR_FILE = "checkpoint.json"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete or unreadable."""


@dataclass
class CheckpointInfo:
    """What a checkpoint's sidecar says.

    Attributes:
        arch: timm architecture name.
        classes: Class names, in output order.
        data_config: Preprocessing used for evaluation and prediction.
        train_config: The config that trained it (``None`` if not recorded).
        metrics: Validation metrics (see ``model.metrics.compute_metrics``).
        history: Per-epoch records (epoch, train_loss, val_loss, val_accuracy, ...).
        model_kwargs: Extra ``timm.create_model`` arguments needed to rebuild the network.
        extra: Any other sidecar keys (pretrained source, versions, timestamps, ...).
    """

    arch: str
    classes: list[str]
    data_config: DataConfig
    train_config: TrainConfig | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.classes)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        inner = None
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            inner = model.module
        elif hasattr(model, "_orig_mod"):
            inner = model._orig_mod  # noqa: SLF001  (torch.compile's wrapper keeps it there)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_checkpoint(
    out_dir: str | os.PathLike[str],
    model: nn.Module,
    *,
    arch: str,
    classes: list[str],
    data_config: DataConfig,
    train_config: TrainConfig | None = None,
    metrics: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``weights.pt`` and then ``checkpoint.json`` into ``out_dir``.

    Args:
        out_dir: Checkpoint directory (created if missing).
        model: The trained network (DDP and ``torch.compile`` wrappers are removed).
        arch: timm architecture name.
        classes: Class names in output order.
        data_config: Preprocessing for evaluation and prediction.
        train_config: The config that trained the model.
        metrics: Validation metrics.
        history: Per-epoch records.
        model_kwargs: Extra ``timm.create_model`` arguments needed to rebuild the network.
        extra: More sidecar keys (never overriding the ones above).

    Returns:
        The checkpoint directory.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    # Over an older checkpoint: drop its sidecar first, so that no reader pairs old metadata
    # with new weights; the directory reads as incomplete until the new sidecar lands.
    (directory / SIDECAR_FILE).unlink(missing_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap_model(model).state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(directory / WEIGHTS_FILE, buffer.getvalue())

    sidecar: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "num_classes": len(classes),
        "classes": list(classes),
        "data_config": data_config.to_dict(),
        "model_kwargs": dict(model_kwargs or {}),
        "train_config": train_config.to_dict() if train_config is not None else None,
        "metrics": metrics or {},
        "history": history or [],
        "weights_file": WEIGHTS_FILE,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    for key, value in (extra or {}).items():
        sidecar.setdefault(key, value)
    text = json.dumps(_sanitize(sidecar), indent=2, allow_nan=False, default=_json_default)
    atomic_write_bytes(directory / SIDECAR_FILE, text.encode("utf-8"))
    return directory


def read_checkpoint_info(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Read and check the sidecar of a checkpoint directory.

    Raises:
        CheckpointError: when the directory or sidecar is missing or malformed.
    """
    directory = Path(path)
    sidecar_path = directory / SIDECAR_FILE
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    if not sidecar_path.is_file():
        raise CheckpointError(f"{directory} is not a complete checkpoint: no {SIDECAR_FILE}")
    try:
        raw = json.loads(sidecar_path.read_text(encoding="utf-8"))
        info = CheckpointInfo(
            arch=str(raw["arch"]),
            classes=[str(c) for c in raw["classes"]],
            data_config=DataConfig.from_dict(raw["data_config"]),
            train_config=(
                TrainConfig.from_dict(raw["train_config"]) if raw.get("train_config") else None
            ),
            metrics=raw.get("metrics") or {},
            history=raw.get("history") or [],
            model_kwargs=raw.get("model_kwargs") or {},
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"malformed {sidecar_path}: {exc}") from exc
    known = {"arch", "classes", "data_config", "train_config", "metrics", "history", "model_kwargs"}
    info.extra = {k: v for k, v in raw.items() if k not in known}
    return info


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict safely (``weights_only=True``) onto the CPU.

    Accepts a Crowdlab checkpoint directory, a ``.pt``/``.pth``/``.bin`` file (a bare state
    dict or a training checkpoint with ``state_dict``/``model`` inside) or a ``.safetensors``
    file. A ``module.`` prefix left by DDP is removed.

    Raises:
        CheckpointError: when the file is missing or cannot be read as weights.
    """
    file = Path(path)
    if file.is_dir():
        file = file / WEIGHTS_FILE
    if not file.is_file():
        raise CheckpointError(f"weights file not found: {file}")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(file), device="cpu")
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and safetensors each raise their own types
        raise CheckpointError(f"cannot read weights from {file}: {exc}") from exc
    for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{file} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _versions() -> dict[str, str]:
    import timm

    return {"torch": torch.__version__, "timm": timm.__version__}


def _sanitize(value: Any) -> Any:
    """Replace NaN/inf (e.g. a diverged loss) by None so the sidecar stays valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot store {type(value).__name__} in checkpoint.json")
