"""What the Train page proposes: architectures, settings that suit the machine and the
collection, and a rough duration.

On a CPU-only machine resnet18 at 224 px for 10 epochs takes most of an hour on a thousand
images; a small ResNet at 128 px gets a usable first model in minutes. With a GPU the
heavier defaults are cheap. The duration estimate is arithmetic on the network's cost
(multiply-accumulates per image at 224 px, scaled by the image area; a training step costs
about three forward passes) over a throughput per device; a finished run of this instance
on the same device replaces the assumed throughput with the measured one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlmodel import Session, select

from app.db.models import ModelStatus, TrainedModel, User
from app.services.ml import trained_models
from app.settings import get_settings

# Forward GMACs per image at 224 px (timm's model cards and ``fvcore`` counts).
GMACS_224 = {
    "mobilenetv3_large_100": 0.22,
    "efficientnet_b0": 0.39,
    "resnet18": 1.82,
    "resnet50": 4.11,
    "convnext_tiny": 4.47,
    "vit_small_patch16_224": 4.25,
    "resnet10t": 1.1,
    "test_resnet": 0.02,
    "test_efficientnet": 0.01,
    "test_convnext": 0.01,
    "test_vit": 0.01,
}
DEFAULT_GMACS = 2.0  # an architecture typed by name that the table does not know
# Assumed training throughput (forward GMACs per second, three per training step counted),
# until a finished run measures this machine: a few CPU cores, one mid-range GPU.
DEVICE_GMACS_PER_S = {"cpu": 15.0, "cuda": 1500.0}
TRAIN_STEP_FACTOR = 3.0


@lru_cache
def cuda_available() -> bool:
    """Whether training here can use a CUDA GPU (torch is imported on first use)."""
    import torch

    return bool(torch.cuda.is_available())


def form_architectures() -> list[dict]:
    """The architectures the form offers: the tiny test networks only when the instance's
    ``show_test_architectures`` setting is on (they stay usable by name in the API)."""
    show_tests = get_settings().show_test_architectures
    return [a for a in trained_models.architectures() if show_tests or not a["test_only"]]


def suggest_settings(*, images: int, cuda: bool) -> dict:
    """Settings for a collection of ``images`` images on this machine (merged over the
    general defaults): fewer passes over large collections, a small network on a CPU."""
    settings = dict(trained_models.DEFAULT_SETTINGS)
    if cuda:
        settings.update(
            arch="resnet18", image_size=224, epochs=15 if images < 2_000 else 10, device="cuda"
        )
    else:
        epochs = 10 if images < 500 else 5 if images < 5_000 else 3
        settings.update(arch="resnet10t", image_size=128, epochs=epochs, device="cpu")
    return settings


def resolved_device(device: str | None, *, cuda: bool) -> str:
    """``auto`` → the device training will use."""
    if device in ("cpu", "cuda"):
        return device
    return "cuda" if cuda else "cpu"


@dataclass
class Throughput:
    """Training speed per device, in forward GMACs per second, and where it came from."""

    gmacs_per_s: dict[str, float]
    measured: dict[str, bool]


def work_gmacs(*, arch: str, image_size: int, epochs: int, images: int) -> float:
    """Forward-pass GMACs of a whole training run (a step counted as three passes)."""
    per_image = GMACS_224.get(arch, DEFAULT_GMACS) * (image_size / 224) ** 2
    return per_image * TRAIN_STEP_FACTOR * epochs * images


def throughput(session: Session, *, requester: User) -> Throughput:
    """The assumed throughput, replaced per device by the requester's latest finished run."""
    rates = dict(DEVICE_GMACS_PER_S)
    measured = dict.fromkeys(rates, False)
    runs = session.exec(
        select(TrainedModel)
        .where(TrainedModel.owner_id == requester.id, TrainedModel.status == ModelStatus.COMPLETED)
        .order_by(TrainedModel.id.desc())
        .limit(20)
    ).all()
    for run in runs:
        metrics, config = run.metrics or {}, run.config or {}
        device = "cuda" if str(metrics.get("device", "")).startswith("cuda") else "cpu"
        seconds = metrics.get("duration_seconds")
        images = metrics.get("train_count")
        if measured[device] or not seconds or not images:
            continue
        work = work_gmacs(
            arch=run.arch,
            image_size=int(config.get("image_size") or 224),
            epochs=int(config.get("epochs") or 1),
            images=int(images),
        )
        if work > 0 and seconds > 1:
            rates[device] = work / float(seconds)
            measured[device] = True
    return Throughput(rates, measured)


def estimate_seconds(
    *, arch: str, image_size: int, epochs: int, images: int, device: str, rates: Throughput
) -> float:
    """Rough wall time of a training run."""
    rate = rates.gmacs_per_s.get(device) or DEVICE_GMACS_PER_S["cpu"]
    return work_gmacs(arch=arch, image_size=image_size, epochs=epochs, images=images) / rate


def describe_duration(seconds: float) -> str:
    """``under a minute`` / ``about 7 min`` / ``about 2.5 h``."""
    if seconds < 60:
        return "under a minute"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"
