"""PNG rendering of the confusion matrix and training curves."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.plots import plot_confusion_matrix, plot_training_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_confusion_matrix_png(tmp_path: Path) -> None:
    path = plot_confusion_matrix([[5, 1], [2, 7]], ["cat", "dog"], tmp_path / "cm.png")
    assert Path(path).read_bytes().startswith(PNG_MAGIC)
    normalised = plot_confusion_matrix([[5, 1], [0, 0]], ["cat", "dog"], tmp_path / "n.png",
                                       normalize=True)  # fmt: skip
    assert Path(normalised).stat().st_size > 1000
    with pytest.raises(ValueError, match="expected \\(3, 3\\)"):
        plot_confusion_matrix([[1, 0], [0, 1]], ["a", "b", "c"], tmp_path / "bad.png")


def test_training_curves_png_with_and_without_validation(tmp_path: Path) -> None:
    history = [
        {"epoch": 1, "train_loss": 1.2, "val_loss": 1.0, "val_accuracy": 0.6},
        {"epoch": 2, "train_loss": 0.7, "val_loss": 0.8, "val_accuracy": 0.7},
    ]
    assert Path(plot_training_curves(history, tmp_path / "c.png")).read_bytes()[:8] == PNG_MAGIC
    no_val = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}]
    assert Path(plot_training_curves(no_val, tmp_path / "d.png")).stat().st_size > 1000
