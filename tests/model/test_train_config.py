"""TrainConfig: defaults, JSON round trip and validation messages."""

from __future__ import annotations

import json

import pytest

from model.config import TrainConfig


def test_defaults_are_valid_and_round_trip_through_json() -> None:
    config = TrainConfig()
    assert config.augmentation == "light"
    assert config.device == "auto"
    assert TrainConfig.from_json(config.to_json()) == config


def test_round_trip_keeps_every_field() -> None:
    config = TrainConfig(
        arch="resnet50",
        epochs=3,
        batch_size=8,
        lr=0.01,
        weight_decay=0.0,
        image_size=128,
        augmentation="heavy",
        pretrained=False,
        pretrained_path="/weights/r50.safetensors",
        device="cpu",
        seed=7,
        num_workers=2,
        compile=True,
        amp=False,
    )
    data = json.loads(config.to_json())
    assert set(data) == {
        "arch", "epochs", "batch_size", "lr", "weight_decay", "image_size", "augmentation",
        "pretrained", "pretrained_path", "device", "seed", "num_workers", "compile", "amp",
        "multilabel", "threshold",
    }  # fmt: skip
    assert TrainConfig.from_json(config.to_json()) == config


def test_missing_keys_take_defaults() -> None:
    assert TrainConfig.from_json('{"epochs": 4}') == TrainConfig(epochs=4)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("epochs", 0, "epochs must be at least 1"),
        ("batch_size", 2.5, "batch_size must be an integer"),
        ("lr", 0, "lr must be greater than 0"),
        ("lr", float("nan"), "lr must be a finite number"),
        ("weight_decay", -1, "weight_decay must be 0 or more"),
        ("image_size", 4, "image_size must be at least 8"),
        ("augmentation", "extreme", "augmentation must be one of none, light, medium, heavy"),
        ("device", "tpu", "device must be one of auto, cpu, cuda"),
        ("pretrained", "yes", "pretrained must be true or false"),
        ("num_workers", -1, "num_workers must be at least 0"),
        ("arch", "", "arch must be a non-empty architecture name"),
    ],
)
def test_invalid_values_raise_clear_errors(field: str, value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        TrainConfig(**{field: value})  # type: ignore[arg-type]


def test_unknown_keys_and_bad_json_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown TrainConfig field.*learning_rate"):
        TrainConfig.from_json('{"learning_rate": 0.1}')
    with pytest.raises(ValueError, match="malformed"):
        TrainConfig.from_json("{epochs: 3")
    with pytest.raises(ValueError, match="JSON object"):
        TrainConfig.from_json("[1, 2]")


@pytest.mark.parametrize(
    ("field", "value"), [("epochs", 501), ("batch_size", 1025), ("image_size", 1025)]
)
def test_settings_above_their_upper_bound_are_refused(field, value):
    with pytest.raises(ValueError, match=f"{field} must be at most"):
        TrainConfig(**{field: value})
