"""Resume state of an interrupted training run, written after every epoch.

One file, ``resume.pt``, in a work directory the caller owns: model weights, optimizer and
schedule state, the finished epochs' history and the random generators, so that a run
killed during epoch 3 starts again at epoch 3 with what epoch 2 left. It is written to a
temporary file and moved into place with ``os.replace``: a reader sees the previous epoch's
state or the new one, never half a file. A state from another config, class list or data
set is ignored (the run starts afresh).
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.checkpoint import atomic_write_bytes, unwrap_model

RESUME_FILE = "resume.pt"

logger = logging.getLogger(__name__)


def fingerprint(config_values: dict[str, Any], classes: list[str], train_count: int) -> str:
    """What must match for a saved state to be resumed: config, classes, data size.

    ``device`` and ``num_workers`` may differ between attempts (another machine).
    """
    values = {k: v for k, v in config_values.items() if k not in ("device", "num_workers")}
    return json.dumps(
        {"config": values, "classes": classes, "train_count": train_count}, sort_keys=True,
        default=str,
    )  # fmt: skip


def save_resume_state(
    directory: str | os.PathLike[str],
    *,
    key: str,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    history: list[dict[str, Any]],
    generator: torch.Generator,
) -> Path:
    """Write the state after ``epoch`` finished (atomically)."""
    state = {
        "key": key,
        "epoch": epoch,
        "model": {k: v.detach().cpu() for k, v in unwrap_model(model).state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": json.dumps(history, default=float),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = Path(directory) / RESUME_FILE
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_resume_state(directory: str | os.PathLike[str], *, key: str) -> dict[str, Any] | None:
    """The saved state when there is one for this run (same ``key``), else ``None``."""
    path = Path(directory) / RESUME_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - an unreadable state only costs a fresh start
        logger.warning("ignoring unreadable resume state %s", path, exc_info=True)
        return None
    if not isinstance(state, dict) or state.get("key") != key:
        logger.info("ignoring resume state %s: it belongs to another run", path)
        return None
    state["history"] = json.loads(state["history"])
    return state


def resumable_epoch(directory: str | os.PathLike[str] | None) -> int:
    """The last finished epoch saved in ``directory`` (0 when there is none)."""
    if directory is None or not (Path(directory) / RESUME_FILE).is_file():
        return 0
    try:
        state = torch.load(Path(directory) / RESUME_FILE, map_location="cpu", weights_only=True)
        return int(state["epoch"])
    except Exception:  # noqa: BLE001
        return 0
