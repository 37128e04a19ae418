"""A training run killed after an epoch resumes at the next epoch from its resume state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_state_dict
from model.config import TrainConfig
from model.resume import RESUME_FILE, resumable_epoch
from model.train import train


class Killed(Exception):
    """Stands in for the process dying mid-epoch."""


def _kill_at(epoch: int) -> Callable[[dict], None]:
    def on_progress(event: dict) -> None:
        if event["epoch"] == epoch and event["phase"] == "train":
            raise Killed(f"killed during epoch {epoch}")

    return on_progress


@pytest.fixture(scope="module")
def items(digits):
    return digits.train[:192], digits.val[:64], digits.classes


@pytest.fixture(scope="module")
def uninterrupted(items, tmp_path_factory, tiny_config):
    train_items, val_items, classes = items
    out = tmp_path_factory.mktemp("straight") / "ckpt"
    return train(tiny_config(epochs=3), train_items, val_items, classes, out)


def test_training_killed_in_epoch_3_resumes_at_epoch_3_and_matches_a_straight_run(
    items, uninterrupted, tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    train_items, val_items, classes = items
    work = tmp_path / "work"
    with pytest.raises(Killed):
        train(tiny_config(epochs=3), train_items, val_items, classes, tmp_path / "a",
              on_progress=_kill_at(3), resume_dir=work)  # fmt: skip
    assert resumable_epoch(work) == 2
    assert not (tmp_path / "a" / "checkpoint.json").exists()

    events: list[dict] = []
    result = train(tiny_config(epochs=3), train_items, val_items, classes, tmp_path / "b",
                   on_progress=events.append, resume_dir=work)  # fmt: skip
    assert result.status == "completed"
    assert {e["epoch"] for e in events} == {3}  # epochs 1 and 2 were not trained again
    assert [h["epoch"] for h in result.history] == [1, 2, 3]

    def losses(history):
        return [(h["epoch"], h["train_loss"], h["val_loss"]) for h in history]

    assert losses(result.history[:2]) == losses(uninterrupted.history[:2])  # carried over
    assert "resumed after epoch 2 of 3" in result.messages
    assert result.metrics["num_samples"] == len(val_items)
    # Weights, optimizer, schedule and data order were all restored: the same model.
    resumed = load_state_dict(result.checkpoint_dir)
    straight = load_state_dict(uninterrupted.checkpoint_dir)
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_a_resume_state_of_another_config_is_ignored(
    items, tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    train_items, val_items, classes = items
    work = tmp_path / "work"
    with pytest.raises(Killed):
        train(tiny_config(epochs=2), train_items, val_items, classes, tmp_path / "a",
              on_progress=_kill_at(2), resume_dir=work)  # fmt: skip
    assert (work / RESUME_FILE).is_file()
    events: list[dict] = []
    result = train(tiny_config(epochs=2, lr=1e-3), train_items, val_items, classes,
                   tmp_path / "b", on_progress=events.append, resume_dir=work)  # fmt: skip
    assert events[0]["epoch"] == 1
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert not any("resumed" in m for m in result.messages)
