"""Device selection and the speed settings that go with it.

On CUDA: bf16 autocast, channels_last memory format, pinned host memory, DataLoader workers
and (optionally) ``torch.compile``. On CPU: plain float32, no workers by default, and fixed
seeds so that a run is reproducible bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)


def resolve_device(requested: str = "auto", *, local_rank: int | None = None) -> torch.device:
    """Turn ``auto|cpu|cuda`` (or ``cuda:N``) into a ``torch.device``.

    Args:
        requested: ``auto`` picks CUDA when available and the CPU otherwise.
        local_rank: Under DDP, the GPU index of this process.

    Raises:
        ValueError: for an unknown name, or ``cuda`` asked for on a machine without CUDA.
    """
    name = (requested or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {requested!r} was requested but CUDA is not available on this machine; "
                "use device 'auto' or 'cpu'"
            )
        if name == "cuda" and local_rank is not None:
            return torch.device("cuda", local_rank)
        return torch.device(name)
    raise ValueError(f"unknown device {requested!r}; use 'auto', 'cpu' or 'cuda'")


@dataclass(frozen=True)
class Runtime:
    """How tensors and models are placed and run on one device.

    Attributes:
        device: The torch device.
        amp_dtype: Autocast dtype (bf16 on CUDA when enabled), ``None`` for plain float32.
        channels_last: Use the channels_last memory format for model and inputs.
        pin_memory: Pin host memory in DataLoaders (CUDA only).
        num_workers: DataLoader worker processes.
        compile: Whether ``prepare_model`` wraps the model with ``torch.compile``.
    """

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    pin_memory: bool = False
    num_workers: int = 0
    compile: bool = False

    @property
    def is_cuda(self) -> bool:
        """True when running on a GPU."""
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """Autocast context for forward passes (a no-op in float32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """Move a model to the device and memory format of this runtime (no compile)."""
        model = model.to(device=self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def maybe_compile(self, model: nn.Module) -> nn.Module:
        """Wrap with ``torch.compile`` when asked for; fall back to eager on failure."""
        if not self.compile:
            return model
        try:
            return torch.compile(model)  # type: ignore[return-value]
        except Exception as exc:  # compile is an optimisation only: never fatal
            logger.warning("torch.compile failed (%s); running eagerly", exc)
            return model

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        """Move a batch of images to the device, in this runtime's memory format."""
        images = images.to(self.device, non_blocking=self.pin_memory)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images


def make_runtime(
    device: str = "auto",
    *,
    amp: bool = True,
    compile: bool = False,
    num_workers: int | None = None,
    local_rank: int | None = None,
) -> Runtime:
    """Pick the device and its fast settings.

    Args:
        device: ``auto|cpu|cuda``.
        amp: bf16 autocast on CUDA (when the GPU supports bf16); ignored on CPU.
        compile: ``torch.compile`` the model on CUDA; ignored on CPU, where compiling costs
            more than it saves for the short runs this platform does.
        num_workers: DataLoader workers; ``None`` means ``min(8, cpu count)`` on CUDA, 0 on CPU.
        local_rank: Under DDP, the GPU index of this process.
    """
    dev = resolve_device(device, local_rank=local_rank)
    if dev.type == "cuda":
        if dev.index is not None:
            torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        bf16 = amp and torch.cuda.is_bf16_supported()
        workers = num_workers if num_workers is not None else min(8, os.cpu_count() or 1)
        return Runtime(
            device=dev,
            amp_dtype=torch.bfloat16 if bf16 else None,
            channels_last=True,
            pin_memory=True,
            num_workers=workers,
            compile=compile,
        )
    return Runtime(device=dev, num_workers=num_workers if num_workers is not None else 0)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a seeded CPU generator.

    The generator drives DataLoader shuffling and worker seeds, so the data order depends on
    ``seed`` only.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive Python and NumPy seeds from torch's worker seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put a model in eval mode for the block, restoring its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
