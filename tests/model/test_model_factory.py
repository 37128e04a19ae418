"""Architectures, unknown names and offline pretrained weights."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from model.checkpoint import save_checkpoint
from model.data import DataConfig
from model.factory import (
    ARCHITECTURES,
    UnknownArchitectureError,
    build_model,
    check_arch,
    find_cached_weights,
)


@pytest.fixture
def weight_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the Hugging Face and torch hub caches at empty temporary folders."""
    import huggingface_hub.constants

    hf_cache = tmp_path / "hf"
    torch_home = tmp_path / "torch"
    hf_cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(torch_home))
    return hf_cache


def test_curated_architectures_exist_in_timm_with_details() -> None:
    expected = {
        "resnet18", "resnet50", "efficientnet_b0", "convnext_tiny", "vit_small_patch16_224",
        "mobilenetv3_large_100", "resnet10t", "test_resnet",
    }  # fmt: skip
    assert expected <= set(ARCHITECTURES)
    for name, info in ARCHITECTURES.items():
        assert timm.is_model(name), name
        assert info.params_m > 0 and info.input_size > 0 and info.speed and info.source


@pytest.mark.parametrize("name", ["test_resnet", "test_vit", "resnet10t"])
def test_curated_parameter_counts_match_timm(name: str) -> None:
    model = timm.create_model(name, pretrained=False)
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    assert params_m == pytest.approx(ARCHITECTURES[name].params_m, rel=0.05)


def test_unknown_architecture_suggests_close_names() -> None:
    with pytest.raises(UnknownArchitectureError, match="unknown architecture 'resnet19'") as err:
        build_model("resnet19", 3)
    assert "Did you mean" in str(err.value) and "resnet18" in str(err.value)
    with pytest.raises(ValueError, match="efficientnet_b0"):
        check_arch("efficentnet_b0")
    assert check_arch("resnet18.a1_in1k") == "resnet18.a1_in1k"


def test_build_from_scratch_has_requested_classes_and_data_config() -> None:
    model, info = build_model("test_resnet", 7, pretrained=False, image_size=32)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    assert info.arch == "test_resnet" and info.num_classes == 7
    assert not info.pretrained_loaded
    assert info.data_config.image_size == 32
    assert info.data_config.mean == (0.5, 0.5, 0.5)  # from timm's pretrained config
    assert info.num_params == sum(p.numel() for p in model.parameters())


def test_fixed_size_models_get_the_requested_image_size() -> None:
    model, info = build_model("test_vit", 4, pretrained=False, image_size=64)
    assert info.model_kwargs == {"img_size": 64}
    assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 4)


def test_missing_pretrained_weights_fall_back_with_a_clear_message(
    weight_caches: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert find_cached_weights("test_resnet") is None
    with caplog.at_level(logging.WARNING, logger="model.factory"):
        model, info = build_model("test_resnet", 3, pretrained=True)
    message = "pretrained weights for test_resnet not available offline; training from scratch"
    assert info.message == message
    assert message in caplog.text
    assert not info.pretrained_loaded
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def test_pretrained_weights_are_read_from_the_hub_cache_offline(weight_caches: Path) -> None:
    reference = timm.create_model("test_resnet", pretrained=False)
    repo = weight_caches / "models--timm--test_resnet.r160_in1k"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()},
              str(snapshot / "model.safetensors"))  # fmt: skip

    model, info = build_model("test_resnet", 5, pretrained=True)
    assert info.pretrained_loaded and info.pretrained_source is not None
    assert "local cache" in info.message
    assert torch.equal(model.conv1[0].weight, reference.conv1[0].weight)
    assert model.get_classifier().out_features == 5  # head replaced for 5 classes


def test_pretrained_path_loads_backbone_and_replaces_head(tmp_path: Path) -> None:
    source, _ = build_model("test_resnet", 10, pretrained=False)
    save_checkpoint(tmp_path / "ckpt", source, arch="test_resnet",
                    classes=[str(i) for i in range(10)], data_config=DataConfig(32))  # fmt: skip
    model, info = build_model("test_resnet", 3, pretrained=True,
                              pretrained_path=tmp_path / "ckpt")  # fmt: skip
    assert info.pretrained_loaded
    assert torch.equal(model.conv1[0].weight, source.conv1[0].weight)
    assert {"fc.weight", "fc.bias"} <= set(info.skipped_keys)
    assert model.get_classifier().out_features == 3


def test_bad_pretrained_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="weights file not found"):
        build_model("test_resnet", 3, pretrained=True, pretrained_path=tmp_path / "nope.pt")
    torch.save({"x": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no tensor .* matches"):
        build_model("test_resnet", 3, pretrained=True, pretrained_path=tmp_path / "other.pt")


def test_vit_weights_are_resampled_to_a_new_image_size(tmp_path: Path) -> None:
    source, info = build_model("test_vit", 4, pretrained=False)
    save_checkpoint(tmp_path / "vit", source, arch="test_vit", classes=list("abcd"),
                    data_config=info.data_config)  # fmt: skip
    model, resized = build_model("test_vit", 4, pretrained_path=tmp_path / "vit", image_size=64)
    assert resized.pretrained_loaded and "pos_embed" not in resized.skipped_keys
    assert model.pos_embed.shape != source.pos_embed.shape
    assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 4)
