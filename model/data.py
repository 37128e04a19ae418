"""Images in, tensors out: one preprocessing definition for training, evaluation and prediction.

The preprocessing is described by a :class:`DataConfig` (timm's ``resolve_data_config`` idea:
input size, mean, std, interpolation). It is saved with every checkpoint, so prediction uses
exactly the transform the model was evaluated with.
"""

from __future__ import annotations

import io
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from model.config import AUGMENTATION_LEVELS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ImageInput = str | os.PathLike[str] | bytes | Image.Image
Item = tuple[str, int]

_INTERPOLATIONS = {
    "nearest": InterpolationMode.NEAREST,
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
}


class BadImageError(ValueError):
    """An image file is missing, unreadable or not an image.

    Attributes:
        path: The offending file, when known.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class DataConfig:
    """Preprocessing of one model.

    Attributes:
        image_size: Square side in pixels fed to the network.
        mean: Per-channel normalisation mean (RGB).
        std: Per-channel normalisation std (RGB).
        interpolation: ``bilinear``, ``bicubic`` or ``nearest``.
        crop_pct: Evaluation resize is ``image_size / crop_pct`` before the centre crop;
            1.0 keeps the whole (shorter-side-resized) image, which suits labelled photos
            whose subject can be anywhere.
    """

    image_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    crop_pct: float = 1.0

    def __post_init__(self) -> None:
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {', '.join(_INTERPOLATIONS)}, "
                f"got {self.interpolation!r}"
            )
        if not 0.1 <= self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct must be in [0.1, 1.0], got {self.crop_pct}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(
            image_size=int(data["image_size"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
            interpolation=str(data.get("interpolation", "bilinear")),
            crop_pct=float(data.get("crop_pct", 1.0)),
        )


def resolve_data_config(
    pretrained_cfg: dict[str, Any] | None, image_size: int | None = None
) -> DataConfig:
    """Derive the preprocessing from a timm pretrained config.

    Args:
        pretrained_cfg: ``model.pretrained_cfg`` of a timm model (mean, std, input_size,
            interpolation); ``None`` gives ImageNet defaults at 224 pixels.
        image_size: Override of the input side; ``None`` keeps the architecture default.
    """
    cfg = pretrained_cfg or {}
    default_size = int(cfg.get("input_size", (3, 224, 224))[-1])
    interpolation = str(cfg.get("interpolation", "bilinear"))
    if interpolation not in _INTERPOLATIONS:
        interpolation = "bilinear"
    mean = tuple(float(v) for v in cfg.get("mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in cfg.get("std", IMAGENET_STD))
    if len(mean) != 3 or len(std) != 3:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    return DataConfig(
        image_size=int(image_size or default_size),
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        interpolation=interpolation,
    )


def build_transform(
    data_config: DataConfig, train: bool, augmentation: str = "none"
) -> Callable[[Image.Image], torch.Tensor]:
    """Build the image -> tensor transform shared by training, evaluation and prediction.

    Evaluation (and ``augmentation="none"``): resize the shorter side, centre crop, normalise.
    Training adds, by level: ``light`` random resized crop (scale 0.7-1) and horizontal flip;
    ``medium`` also a wider crop range (0.4-1) and colour jitter; ``heavy`` also
    TrivialAugment and random erasing.

    Args:
        data_config: Size, mean, std and interpolation of the model.
        train: Build the training transform (with augmentation) rather than the eval one.
        augmentation: One of ``none|light|medium|heavy``; ignored when ``train`` is False.
    """
    if augmentation not in AUGMENTATION_LEVELS:
        raise ValueError(
            f"augmentation must be one of {', '.join(AUGMENTATION_LEVELS)}, got {augmentation!r}"
        )
    size = data_config.image_size
    interp = _INTERPOLATIONS[data_config.interpolation]
    normalize = [T.ToTensor(), T.Normalize(mean=data_config.mean, std=data_config.std)]
    if not train or augmentation == "none":
        resize_to = int(round(size / data_config.crop_pct))
        steps: list[Any] = [T.Resize(resize_to, interpolation=interp), T.CenterCrop(size)]
        return T.Compose(steps + normalize)

    ratio = (3 / 4, 4 / 3)
    if augmentation == "light":
        steps = [
            T.RandomResizedCrop(size, scale=(0.7, 1.0), ratio=ratio, interpolation=interp),
            T.RandomHorizontalFlip(),
        ]
        return T.Compose(steps + normalize)
    if augmentation == "medium":
        steps = [
            T.RandomResizedCrop(size, scale=(0.4, 1.0), ratio=ratio, interpolation=interp),
            T.RandomHorizontalFlip(),
            T.ColorJitter(0.2, 0.2, 0.2),
        ]
        return T.Compose(steps + normalize)
    steps = [
        T.RandomResizedCrop(size, scale=(0.25, 1.0), ratio=ratio, interpolation=interp),
        T.RandomHorizontalFlip(),
        T.TrivialAugmentWide(interpolation=interp),
        T.ColorJitter(0.3, 0.3, 0.3),
    ]
    return T.Compose(steps + normalize + [T.RandomErasing(p=0.25, value="random")])


def load_image(source: ImageInput) -> Image.Image:
    """Open an image (path, bytes or PIL image) as upright RGB, fully decoded.

    The EXIF orientation of camera photos is applied, as browsers do, so the model sees
    what the labellers saw.

    Raises:
        BadImageError: when the file is missing, unreadable, truncated or not an image.
    """
    if isinstance(source, Image.Image):
        return _upright_rgb(source)
    stream: io.BufferedIOBase
    if isinstance(source, bytes | bytearray):
        name = f"<{len(source)} bytes>"
        stream = io.BytesIO(source)
    elif isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        if not os.path.isfile(name):
            raise BadImageError(f"image file not found: {name}", path=name)
        try:
            stream = open(name, "rb")  # closed by the with-block below
        except OSError as exc:
            raise BadImageError(f"cannot open image file {name}: {exc}", path=name) from exc
    else:
        raise BadImageError(
            f"cannot read an image from a {type(source).__name__}; "
            "give a file path, bytes or a PIL image"
        )
    try:
        with stream, Image.open(stream) as image:
            image.load()
            return _upright_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImageError(f"not a readable image: {name} ({exc})", path=name) from exc
    except Image.DecompressionBombError as exc:
        raise BadImageError(f"image too large to decode safely: {name}", path=name) from exc


def _upright_rgb(image: Image.Image) -> Image.Image:
    if image.getexif().get(ExifTags.Base.Orientation, 1) not in (None, 1):
        image = ImageOps.exif_transpose(image)
    return image if image.mode == "RGB" else image.convert("RGB")


class ImageListDataset(Dataset[tuple[torch.Tensor, int]]):
    """A list of ``(path, class_index)`` pairs as a torch Dataset.

    Args:
        items: Image paths with their class index.
        transform: Image -> tensor transform (see :func:`build_transform`).
    """

    def __init__(
        self,
        items: Sequence[tuple[str | os.PathLike[str], int]],
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
    ) -> None:
        self.items: list[Item] = [(os.fspath(path), int(label)) for path, label in items]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        image = load_image(path)
        if self.transform is None:
            return T.functional.pil_to_tensor(image), label
        return self.transform(image), label


def check_items(items: Sequence[tuple[Any, Any]], num_classes: int, what: str) -> list[Item]:
    """Validate ``(path, class_index)`` pairs and return them normalised.

    Raises:
        ValueError: naming the first bad row.
    """
    checked: list[Item] = []
    for row, item in enumerate(items):
        try:
            path, label = item
        except (TypeError, ValueError):
            raise ValueError(
                f"{what} item {row} must be a (path, class_index) pair, got {item!r}"
            ) from None
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise ValueError(f"{what} item {row}: class index must be an int, got {label!r}")
        label = int(label)
        if not 0 <= label < num_classes:
            raise ValueError(
                f"{what} item {row}: class index {label} is outside 0..{num_classes - 1}"
            )
        checked.append((os.fspath(Path(path)), label))
    return checked
