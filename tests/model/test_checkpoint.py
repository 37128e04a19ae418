"""Checkpoint directories: atomic files, sidecar contents, safe loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.checkpoint import (
    SIDECAR_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    atomic_write_bytes,
    read_checkpoint_info,
    save_checkpoint,
)
from model.config import TrainConfig
from model.data import DataConfig
from model.factory import build_model, load_checkpoint


def _save(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    model, info = build_model("test_resnet", 3, pretrained=False, image_size=32)
    directory = save_checkpoint(
        tmp_path / "ckpt",
        model,
        arch="test_resnet",
        classes=["cat", "dog", "fox"],
        data_config=info.data_config,
        train_config=TrainConfig(arch="test_resnet", image_size=32),
        metrics={"accuracy": 0.5},
        history=[{"epoch": 1, "train_loss": float("nan")}],
    )
    return model.eval(), directory


def test_round_trip_restores_identical_outputs(tmp_path: Path) -> None:
    model, directory = _save(tmp_path)
    loaded, info = load_checkpoint(directory)
    x = torch.randn(4, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert not loaded.training
    assert info.arch == "test_resnet" and info.classes == ["cat", "dog", "fox"]
    assert info.data_config == DataConfig.from_dict(info.data_config.to_dict())
    assert info.train_config == TrainConfig(arch="test_resnet", image_size=32)


def test_directory_layout_and_sidecar_keys(tmp_path: Path) -> None:
    _, directory = _save(tmp_path)
    assert sorted(p.name for p in directory.iterdir()) == [SIDECAR_FILE, WEIGHTS_FILE]
    sidecar = json.loads((directory / SIDECAR_FILE).read_text())
    assert {
        "format_version", "arch", "num_classes", "classes", "data_config", "model_kwargs",
        "train_config", "metrics", "history", "weights_file", "created_at", "versions",
    } <= set(sidecar)  # fmt: skip
    assert set(sidecar["data_config"]) == {"image_size", "mean", "std", "interpolation",
                                           "crop_pct"}  # fmt: skip
    assert sidecar["history"][0]["train_loss"] is None  # NaN stored as null, JSON stays valid


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_missing_or_incomplete_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint directory not found"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        read_checkpoint_info(tmp_path / "half")
    _, directory = _save(tmp_path)
    sidecar = json.loads((directory / SIDECAR_FILE).read_text())
    sidecar["classes"] = ["only", "two"]
    (directory / SIDECAR_FILE).write_text(json.dumps(sidecar))
    with pytest.raises(CheckpointError, match="do not match architecture 'test_resnet'"):
        load_checkpoint(directory)


def test_weights_are_loaded_with_weights_only(tmp_path: Path) -> None:
    _, directory = _save(tmp_path)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pickled code ran",))

    torch.save({"fc.weight": Evil()}, directory / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_checkpoint(directory)
