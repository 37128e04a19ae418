"""Training on scikit-learn's digits: accuracy, progress, cancel, reproducibility, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from model.checkpoint import SIDECAR_FILE, WEIGHTS_FILE, load_state_dict
from model.config import TrainConfig
from model.data import BadImageError
from model.train import train


def test_tiny_model_learns_digits_well_above_chance(trained) -> None:
    result = trained.result
    assert result.status == "completed" and not result.cancelled
    assert result.metrics["accuracy"] > 0.5  # chance is 0.1
    assert result.metrics["num_samples"] == 300
    assert len(result.metrics["confusion_matrix"]) == 10
    assert result.epochs_completed == 2
    assert [h["epoch"] for h in result.history] == [1, 2]
    for record in result.history:
        assert record["train_loss"] > 0 and record["val_loss"] > 0
        assert 0.0 <= record["val_accuracy"] <= 1.0
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]
    assert result.train_images_per_second > 0 and result.device == "cpu"
    assert result.model_info["arch"] == "test_resnet"


def test_checkpoint_directory_holds_weights_sidecar_and_pictures(trained) -> None:
    directory = trained.checkpoint_dir
    names = {p.name for p in directory.iterdir()}
    assert names == {WEIGHTS_FILE, SIDECAR_FILE, "confusion_matrix.png", "training_curves.png"}
    sidecar = json.loads((directory / SIDECAR_FILE).read_text())
    assert sidecar["arch"] == "test_resnet"
    assert sidecar["classes"] == [str(d) for d in range(10)]
    assert sidecar["data_config"]["image_size"] == 32
    assert TrainConfig.from_dict(sidecar["train_config"]).epochs == 2
    assert sidecar["metrics"]["accuracy"] == trained.result.metrics["accuracy"]
    assert len(sidecar["history"]) == 2
    assert sidecar["pretrained"]["loaded"] is False


def test_progress_reports_are_complete_and_monotonic(trained) -> None:
    events = trained.events
    keys = {"phase", "epoch", "epochs", "step", "steps", "loss", "val_accuracy", "eta_seconds",
            "fraction"}  # fmt: skip
    assert all(keys <= set(e) for e in events)
    fractions = [e["fraction"] for e in events]
    assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] == 1.0
    assert events[-1]["phase"] == "done" and events[-1]["eta_seconds"] == 0.0
    epoch_ends = [e for e in events if e["phase"] == "epoch_end"]
    assert [e["epoch"] for e in epoch_ends] == [1, 2]
    assert all(e["val_accuracy"] is not None for e in epoch_ends)
    assert all(e["eta_seconds"] >= 0 for e in events)


def test_should_stop_cancels_without_writing_a_checkpoint(
    digits, tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    polls = 0

    def stop() -> bool:
        nonlocal polls
        polls += 1
        return polls > 3

    events: list[dict] = []
    result = train(tiny_config(epochs=5), digits.train[:320], digits.val[:50], digits.classes,
                   tmp_path / "ckpt", on_progress=events.append, should_stop=stop)  # fmt: skip
    assert result.cancelled and result.status == "cancelled"
    assert result.checkpoint_dir is None and result.epochs_completed == 0
    assert not (tmp_path / "ckpt" / SIDECAR_FILE).exists()
    assert events[-1]["phase"] == "cancelled" and events[-1]["step"] == 3


def test_same_seed_on_cpu_gives_identical_weights_and_metrics(
    digits, tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    config = tiny_config(epochs=1, augmentation="light", seed=3)
    runs = [
        train(config, digits.train[:128], digits.val[:64], digits.classes, tmp_path / name)
        for name in ("a", "b")
    ]
    assert runs[0].metrics == runs[1].metrics
    assert [h["train_loss"] for h in runs[0].history] == [h["train_loss"] for h in runs[1].history]
    first, second = (load_state_dict(tmp_path / name) for name in ("a", "b"))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)

    other = train(tiny_config(epochs=1, augmentation="light", seed=4), digits.train[:128],
                  digits.val[:64], digits.classes, tmp_path / "c")  # fmt: skip
    third = load_state_dict(tmp_path / "c")
    assert not all(torch.equal(first[k], third[k]) for k in first)
    assert other.status == "completed"


def test_training_without_validation_set(
    digits, tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    result = train(tiny_config(epochs=1), digits.train[:64], [], digits.classes, tmp_path / "m")
    assert result.metrics == {} and result.history[0]["val_accuracy"] is None
    assert (tmp_path / "m" / "training_curves.png").is_file()
    assert not (tmp_path / "m" / "confusion_matrix.png").exists()


def test_pretrained_fallback_is_reported_in_the_result(
    digits, tiny_config: Callable[..., TrainConfig], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr("model.factory.find_cached_weights", lambda arch: None)
    result = train(tiny_config(epochs=1, pretrained=True), digits.train[:64], [],
                   digits.classes, tmp_path / "m")  # fmt: skip
    assert (
        "pretrained weights for test_resnet not available offline; training from scratch"
        in result.messages
    )


def test_bad_image_stops_training_with_an_error_naming_it(
    digits, tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"definitely not a png")
    items = [*digits.train[:20], (str(broken), 1)]
    with pytest.raises(BadImageError, match="broken.png"):
        train(tiny_config(epochs=1, batch_size=64), items, [], digits.classes, tmp_path / "m")


def test_invalid_inputs_are_rejected_before_training(
    digits, tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        train(tiny_config(), digits.train[:10], [], ["only"], tmp_path)
    with pytest.raises(ValueError, match="class index 10 is outside 0..9"):
        train(tiny_config(), [(digits.train[0][0], 10)], [], digits.classes, tmp_path)
    with pytest.raises(ValueError, match="unknown architecture 'not_a_net'"):
        train(tiny_config(arch="not_a_net"), digits.train[:10], [], digits.classes, tmp_path)
