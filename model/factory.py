"""Architectures and model construction through ``timm.create_model``.

Pretrained weights are never downloaded here. They come from, in order: a local file or
Crowdlab checkpoint given as ``pretrained_path``; timm's Hugging Face hub cache or the torch
hub cache, read offline; otherwise the model starts from random initialisation and the
returned :class:`ModelInfo` says so ("pretrained weights for X not available offline;
training from scratch").
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from model.checkpoint import (
    WEIGHTS_FILE,
    CheckpointError,
    CheckpointInfo,
    load_state_dict,
    read_checkpoint_info,
)
from model.data import DataConfig, resolve_data_config

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchInfo:
    """One curated architecture.

    Attributes:
        name: timm model name.
        params_m: Parameters in millions (with the 1000-class ImageNet head).
        input_size: Default square input side in pixels.
        speed: Speed versus accuracy, in words.
        source: Paper (and the timm weights tag the figures refer to).
        test_only: Tiny network meant for tests and smoke runs, not for real data.
    """

    name: str
    params_m: float
    input_size: int
    speed: str
    source: str
    test_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


ARCHITECTURES: dict[str, ArchInfo] = {
    a.name: a
    for a in (
        ArchInfo(
            "mobilenetv3_large_100",
            5.5,
            224,
            "fastest of the list; good for CPU inference; ImageNet top-1 about 75.8%",
            "Howard et al. 2019, Searching for MobileNetV3 (timm ra_in1k)",
        ),
        ArchInfo(
            "efficientnet_b0",
            5.3,
            224,
            "fast, accurate for its size; ImageNet top-1 about 77.7%",
            "Tan & Le 2019, EfficientNet (timm ra_in1k)",
        ),
        ArchInfo(
            "resnet18",
            11.7,
            224,
            "fast, simple, robust baseline; ImageNet top-1 about 71.5%",
            "He et al. 2016, Deep Residual Learning (timm a1_in1k, ResNet strikes back)",
        ),
        ArchInfo(
            "resnet50",
            25.6,
            224,
            "medium speed, solid accuracy; ImageNet top-1 about 80.4%",
            "He et al. 2016, Deep Residual Learning (timm a1_in1k, ResNet strikes back)",
        ),
        ArchInfo(
            "convnext_tiny",
            28.6,
            224,
            "slower, most accurate CNN here; ImageNet top-1 about 84.2%",
            "Liu et al. 2022, A ConvNet for the 2020s (timm in12k_ft_in1k)",
        ),
        ArchInfo(
            "vit_small_patch16_224",
            22.1,
            224,
            "transformer; needs pretrained weights to shine; ImageNet top-1 about 81.4%",
            "Dosovitskiy et al. 2021, An Image is Worth 16x16 Words; Steiner et al. 2021 "
            "(timm augreg_in21k_ft_in1k)",
        ),
        ArchInfo(
            "resnet10t",
            5.4,
            176,
            "very small ResNet, quick experiments; ImageNet top-1 about 68%",
            "timm ResNet-10-T (c3_in1k)",
        ),
        ArchInfo(
            "test_resnet",
            0.47,
            160,
            "tiny; for tests and smoke runs only",
            "timm test model",
            test_only=True,
        ),
        ArchInfo(
            "test_efficientnet",
            0.36,
            160,
            "tiny; for tests and smoke runs only",
            "timm test model",
            test_only=True,
        ),
        ArchInfo(
            "test_convnext",
            0.27,
            160,
            "tiny; for tests and smoke runs only",
            "timm test model",
            test_only=True,
        ),
        ArchInfo(
            "test_vit",
            0.37,
            160,
            "tiny; for tests and smoke runs only",
            "timm test model",
            test_only=True,
        ),
    )
}


class UnknownArchitectureError(ValueError):
    """The architecture name is not a timm model."""


@dataclass
class ModelInfo:
    """How a model was built.

    Attributes:
        arch: timm architecture name.
        num_classes: Output classes.
        num_params: Number of parameters.
        data_config: Preprocessing for this model and image size.
        pretrained_loaded: Whether pretrained weights were loaded.
        pretrained_source: Where they came from (file path), or ``None``.
        message: One readable line about the weights (e.g. the from-scratch fallback).
        model_kwargs: Extra ``timm.create_model`` arguments (needed to rebuild it).
        skipped_keys: Pretrained tensors not loaded (classifier head, shape mismatches).
    """

    arch: str
    num_classes: int
    num_params: int
    data_config: DataConfig
    pretrained_loaded: bool = False
    pretrained_source: str | None = None
    message: str = ""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    skipped_keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = asdict(self)
        data["data_config"] = self.data_config.to_dict()
        return data


def check_arch(arch: str) -> str:
    """Return ``arch`` when timm knows it.

    Raises:
        UnknownArchitectureError: with the closest known names as suggestions.
    """
    if isinstance(arch, str) and arch and timm.is_model(arch):
        return arch
    base = str(arch).split(".")[0]
    curated = list(ARCHITECTURES)
    close = difflib.get_close_matches(base, curated, n=3, cutoff=0.5)
    close += [
        n
        for n in difflib.get_close_matches(base, timm.list_models(), n=5, cutoff=0.6)
        if n not in close
    ]
    hint = f" Did you mean: {', '.join(close[:5])}?" if close else ""
    raise UnknownArchitectureError(
        f"unknown architecture {arch!r}: timm has no model of that name.{hint} "
        f"Curated choices: {', '.join(n for n in curated if not ARCHITECTURES[n].test_only)}."
    )


def create_network(arch: str, num_classes: int, **model_kwargs: Any) -> nn.Module:
    """Create a randomly initialised timm network (no weight loading at all)."""
    return timm.create_model(
        check_arch(arch), pretrained=False, num_classes=num_classes, **model_kwargs
    )


def build_model(
    arch: str,
    num_classes: int,
    pretrained: bool = False,
    pretrained_path: str | os.PathLike[str] | None = None,
    *,
    image_size: int | None = None,
) -> tuple[nn.Module, ModelInfo]:
    """Build a classifier with ``num_classes`` outputs, never touching the network.

    Args:
        arch: timm model name (e.g. ``resnet18``; ``resnet18.a1_in1k`` picks a weights tag).
        num_classes: Number of output classes.
        pretrained: Look for pretrained weights (``pretrained_path``, then the hub caches).
        pretrained_path: Local weights file (``.pt``/``.pth``/``.bin``/``.safetensors``) or
            Crowdlab checkpoint directory; the classifier head is re-initialised when its
            shape differs.
        image_size: Input side; passed to timm for fixed-size models (ViT).

    Returns:
        ``(model, info)``; ``info.message`` tells where the weights came from.

    Raises:
        UnknownArchitectureError: for a name timm does not know.
        ValueError: for a ``pretrained_path`` that is missing or holds no weights.
    """
    arch = check_arch(arch)
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    model_kwargs: dict[str, Any] = {}
    default_cfg = timm.models.get_pretrained_cfg(arch)
    default_size = int(default_cfg.input_size[-1]) if default_cfg else 224
    if image_size and image_size != default_size and default_cfg and default_cfg.fixed_input_size:
        model_kwargs["img_size"] = image_size

    model: nn.Module | None = None
    source: str | None = None
    skipped: list[str] = []
    if pretrained_path is not None:
        model = create_network(arch, num_classes, **model_kwargs)
        try:
            skipped = _load_matching(model, load_state_dict(pretrained_path))
        except CheckpointError as exc:
            raise ValueError(f"pretrained_path: {exc}") from exc
        source = os.fspath(pretrained_path)
        message = f"loaded pretrained weights for {arch} from {source}"
    elif pretrained:
        cached = find_cached_weights(arch)
        if cached is not None:
            try:
                model = timm.create_model(
                    arch,
                    pretrained=True,
                    num_classes=num_classes,
                    pretrained_cfg_overlay={"file": cached},
                    **model_kwargs,
                )
                source = cached
            except Exception as exc:  # a corrupt cache entry must not stop training
                logger.warning("cached weights %s for %s are unusable: %s", cached, arch, exc)
                model = None
        if model is not None:
            message = f"loaded pretrained weights for {arch} from the local cache ({cached})"
        else:
            message = f"pretrained weights for {arch} not available offline; training from scratch"
    else:
        message = f"{arch} initialised randomly (pretrained=False)"
    if model is None:
        model = create_network(arch, num_classes, **model_kwargs)
    if pretrained or pretrained_path is not None:
        log = logger.info if source else logger.warning
        log(message)

    data_config = resolve_data_config(getattr(model, "pretrained_cfg", None), image_size)
    info = ModelInfo(
        arch=arch,
        num_classes=num_classes,
        num_params=sum(p.numel() for p in model.parameters()),
        data_config=data_config,
        pretrained_loaded=source is not None,
        pretrained_source=source,
        message=message,
        model_kwargs=model_kwargs,
        skipped_keys=skipped,
    )
    return model, info


def find_cached_weights(arch: str) -> str | None:
    """Path of cached pretrained weights for ``arch``, looked up without any network call.

    Looks in the Hugging Face hub cache (``HF_HOME`` / ``HF_HUB_CACHE``) for the timm repo's
    ``model.safetensors`` or ``pytorch_model.bin``, then in the torch hub cache
    (``TORCH_HOME``) for the weights URL's file name.
    """
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo_id, _, revision = cfg.hf_hub_id.partition("@")
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else []
        names += ["model.safetensors", "pytorch_model.bin"]
        for filename in names:
            found = try_to_load_from_cache(repo_id, filename, revision=revision or None)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    url = cfg.url if isinstance(cfg.url, str) else None
    if url and not url.endswith(".npz"):
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        if candidate.is_file():
            return str(candidate)
    return None


def _load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load tensors whose names and shapes match; return the names left out."""
    own = model.state_dict()
    if (
        "pos_embed" in state
        and "pos_embed" in own
        and state["pos_embed"].shape != own["pos_embed"].shape
    ):
        state = dict(state)
        state["pos_embed"] = _resample_pos_embed(model, state["pos_embed"])
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise CheckpointError("no tensor in the weights file matches this architecture")
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


def _resample_pos_embed(model: nn.Module, pos_embed: torch.Tensor) -> torch.Tensor:
    from timm.layers import resample_abs_pos_embed

    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if grid is None:
        return pos_embed
    prefix = getattr(model, "num_prefix_tokens", 0)
    if getattr(model, "no_embed_class", False):
        prefix = 0
    return resample_abs_pos_embed(pos_embed, new_size=list(grid), num_prefix_tokens=prefix)


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[nn.Module, CheckpointInfo]:
    """Rebuild the model of a checkpoint directory, in eval mode, on ``device``.

    Returns:
        ``(model, info)``.

    Raises:
        CheckpointError: when the checkpoint is incomplete or does not match its arch.
    """
    info = read_checkpoint_info(path)
    state = load_state_dict(Path(path) / WEIGHTS_FILE)
    network = create_network(info.arch, info.num_classes, **info.model_kwargs)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"weights in {path} do not match architecture {info.arch!r} "
            f"with {info.num_classes} classes: {exc}"
        ) from exc
    network.eval()
    return network.to(device), info
