"""Shared fixtures for model tests: scikit-learn's digits as PNG files, a trained checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.config import TrainConfig

IMAGE_SIZE = 32


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Run torch single-threaded in these tests.

    On a busy machine (or under pytest-xdist) two OpenMP threads per process spin and stall
    each other: the training fixture took 100 s of wall time instead of 12 s in a measurement
    with the load average at 9 on 2 cores.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@dataclass(frozen=True)
class Digits:
    """The digits data set saved as 32x32 PNGs, split into train and validation items."""

    root: Path
    classes: list[str]
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Digits:
    """1,797 8x8 digit images upscaled to 32x32 PNGs; 10 classes; a fixed 1,200/597 split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    root = tmp_path_factory.mktemp("digits")
    items: list[tuple[str, int]] = []
    for i, (pixels, target) in enumerate(zip(data.images, data.target, strict=True)):
        path = root / f"{i:04d}_{target}.png"
        grey = Image.fromarray((pixels * (255 / 16)).astype(np.uint8), mode="L")
        grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR).save(path)
        items.append((str(path), int(target)))
    order = np.random.default_rng(0).permutation(len(items))
    shuffled = [items[i] for i in order]
    return Digits(root, [str(d) for d in range(10)], shuffled[:1200], shuffled[1200:])


def _tiny_config(**overrides: object) -> TrainConfig:
    """A CPU config that trains timm's test_resnet on 32x32 digits in seconds."""
    values: dict[str, object] = {
        "arch": "test_resnet",
        "epochs": 2,
        "batch_size": 32,
        "lr": 3e-3,
        "weight_decay": 0.01,
        "image_size": IMAGE_SIZE,
        "augmentation": "none",
        "pretrained": False,
        "device": "cpu",
        "seed": 0,
        "num_workers": 0,
    }
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., TrainConfig]:
    """Factory of small CPU configs: ``tiny_config(epochs=1, seed=3)``."""
    return _tiny_config


@dataclass(frozen=True)
class TrainedRun:
    """A finished training run on the digits and what it reported."""

    result: object
    checkpoint_dir: Path
    events: list[dict[str, object]]
    digits: Digits


@pytest.fixture(scope="session")
def trained(digits: Digits, tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """Train test_resnet from scratch for 2 epochs on 800 digits (validated on 300)."""
    from model.train import train

    events: list[dict[str, object]] = []
    out = tmp_path_factory.mktemp("run") / "checkpoint"
    result = train(
        _tiny_config(),
        digits.train[:800],
        digits.val[:300],
        digits.classes,
        out,
        on_progress=events.append,
    )
    assert result.checkpoint_dir is not None
    return TrainedRun(result, Path(result.checkpoint_dir), events, digits)
