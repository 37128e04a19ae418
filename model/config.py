"""Training configuration: one dataclass shared by the CLI, the web form and the API.

The config is saved as JSON beside every checkpoint, so a model can always be traced back
to the settings that produced it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

AUGMENTATION_LEVELS: tuple[str, ...] = ("none", "light", "medium", "heavy")
# Upper bounds: generous for real work, and they keep one request from queueing a job that
# would hold a GPU for weeks or fail on memory (epochs 10**9, batch 10**6, 2048-pixel inputs).
MAX_EPOCHS = 500
MAX_BATCH_SIZE = 1024
MAX_IMAGE_SIZE = 1024
MAX_NUM_WORKERS = 64
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Everything that decides how a model is trained.

    Attributes:
        arch: timm architecture name (see ``model.factory.ARCHITECTURES`` for the curated list).
        epochs: Passes over the training items.
        batch_size: Images per optimisation step (per process under DDP).
        lr: Peak learning rate of AdamW; a short linear warm-up is followed by cosine decay.
        weight_decay: AdamW decoupled weight decay.
        image_size: Square input side in pixels; ``None`` uses the architecture's default.
        augmentation: Training augmentation level, one of ``none|light|medium|heavy``.
        pretrained: Start from pretrained weights when they are available offline; training
            falls back to random initialisation (with a message) when they are not.
        pretrained_path: A local weights file (or Crowdlab checkpoint directory) to start from.
        device: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.
        seed: Seed for every random number generator; a CPU run is reproducible.
        num_workers: DataLoader worker processes; ``None`` picks a value for the device.
        compile: Wrap the model with ``torch.compile`` (CUDA only; ignored on CPU).
        amp: bf16 autocast on CUDA (ignored on CPU).
        multilabel: Any number of tags per image: one sigmoid output per tag trained with
            binary cross-entropy (items carry lists of tag indices); else one class (softmax).
        threshold: Multilabel: the probability from which a tag is predicted.
    """

    arch: str = "resnet18"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    image_size: int | None = None
    augmentation: str = "light"
    pretrained: bool = True
    pretrained_path: str | None = None
    device: str = "auto"
    seed: int = 0
    num_workers: int | None = None
    compile: bool = False
    amp: bool = True
    multilabel: bool = False
    threshold: float = 0.5

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field.

        Raises:
            ValueError: naming the field, the bad value and what is allowed.
        """
        if not isinstance(self.arch, str) or not self.arch.strip():
            raise ValueError(f"arch must be a non-empty architecture name, got {self.arch!r}")
        _check_int("epochs", self.epochs, minimum=1, maximum=MAX_EPOCHS)
        _check_int("batch_size", self.batch_size, minimum=1, maximum=MAX_BATCH_SIZE)
        _check_float("lr", self.lr, positive=True)
        _check_float("weight_decay", self.weight_decay, positive=False)
        if self.image_size is not None:
            _check_int("image_size", self.image_size, minimum=8, maximum=MAX_IMAGE_SIZE)
        if self.augmentation not in AUGMENTATION_LEVELS:
            raise ValueError(
                f"augmentation must be one of {', '.join(AUGMENTATION_LEVELS)}; "
                f"got {self.augmentation!r}"
            )
        _check_bool("pretrained", self.pretrained)
        if self.pretrained_path is not None and (
            not isinstance(self.pretrained_path, str) or not self.pretrained_path
        ):
            raise ValueError(
                f"pretrained_path must be a file path or null, got {self.pretrained_path!r}"
            )
        if self.device not in DEVICE_CHOICES:
            raise ValueError(
                f"device must be one of {', '.join(DEVICE_CHOICES)}; got {self.device!r}"
            )
        _check_int("seed", self.seed, minimum=0)
        if self.num_workers is not None:
            _check_int("num_workers", self.num_workers, minimum=0, maximum=MAX_NUM_WORKERS)
        _check_bool("compile", self.compile)
        _check_bool("amp", self.amp)
        _check_bool("multilabel", self.multilabel)
        if (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int | float)
            or not 0.0 < float(self.threshold) < 1.0
        ):
            raise ValueError(f"threshold must be a number in (0, 1), got {self.threshold!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the public fields as a plain JSON-ready dict."""
        return {f.name: getattr(self, f.name) for f in _public_fields()}

    def to_json(self, indent: int | None = 2) -> str:
        """Serialise to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from a dict; missing keys take their defaults.

        Raises:
            ValueError: for unknown keys or invalid values.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a TrainConfig must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in _public_fields()}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown TrainConfig field(s): {', '.join(unknown)}; "
                f"known fields are {', '.join(sorted(known))}"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        """Parse JSON text produced by :meth:`to_json` (or written by hand).

        Raises:
            ValueError: for malformed JSON, unknown keys or invalid values.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"TrainConfig JSON is malformed: {exc}") from exc
        return cls.from_dict(data)


def _public_fields() -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(TrainConfig)


def _check_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")


def _check_float(name: str, value: Any, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be greater than 0, got {value}")
    if not positive and value < 0:
        raise ValueError(f"{name} must be 0 or more, got {value}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
