"""Prediction from a checkpoint: round trip, probabilities, input kinds, threads, cache."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from model.checkpoint import SIDECAR_FILE
from model.data import BadImageError
from model.evaluate import evaluate
from model.predict import Predictor, clear_predictor_cache, get_predictor


def test_evaluating_the_checkpoint_reproduces_training_metrics(trained) -> None:
    metrics = evaluate(trained.checkpoint_dir, trained.digits.val[:300], device="cpu")
    expected = trained.result.metrics
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]
    assert metrics["accuracy"] == expected["accuracy"]
    assert metrics["loss"] == pytest.approx(expected["loss"], rel=1e-6)
    assert metrics["per_class"][0]["average_precision"] == pytest.approx(
        expected["per_class"][0]["average_precision"]
    )


def test_evaluate_accepts_class_names_and_rejects_unknown_ones(trained) -> None:
    path, label = trained.digits.val[0]
    metrics = evaluate(trained.checkpoint_dir, [(path, str(label))], device="cpu")
    assert metrics["num_samples"] == 1
    with pytest.raises(ValueError, match="class 'seven' is not one of the checkpoint's classes"):
        evaluate(trained.checkpoint_dir, [(path, "seven")], device="cpu")


def test_predictor_matches_evaluation_and_probabilities_sum_to_one(trained) -> None:
    predictor = Predictor.from_checkpoint(trained.checkpoint_dir, device="cpu")
    paths = [p for p, _ in trained.digits.val[:40]]
    labels = np.array([c for _, c in trained.digits.val[:40]])
    probs = predictor.predict_proba(paths)
    assert probs.shape == (40, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert (probs.argmax(axis=1) == labels).mean() > 0.5

    full = predictor.predict(paths[0], top_k=None)
    assert len(full) == 10 and sum(p for _, p in full) == pytest.approx(1.0, abs=1e-9)
    assert [p for _, p in full] == sorted((p for _, p in full), reverse=True)
    top3 = predictor.predict(paths[0], top_k=3)
    assert top3 == full[:3]
    assert full[0][0] == predictor.classes[int(probs[0].argmax())]


def test_path_bytes_and_pil_inputs_agree(trained) -> None:
    predictor = get_predictor(trained.checkpoint_dir, device="cpu")
    path = trained.digits.val[1][0]
    with open(path, "rb") as handle:
        raw = handle.read()
    by_path = predictor.predict(path)
    assert predictor.predict(raw) == by_path
    assert predictor.predict(Image.open(path)) == by_path
    batch = predictor.predict_batch([path, raw, trained.digits.val[2][0]], top_k=2)
    assert len(batch) == 3
    # a batch of three may run other CPU kernels than a batch of one: equal up to rounding
    for row in batch[:2]:
        assert [label for label, _ in row] == [label for label, _ in by_path[:2]]
        assert [p for _, p in row] == pytest.approx([p for _, p in by_path[:2]], abs=1e-5)
    assert predictor.predict_batch([]) == []


def test_concurrent_predictions_equal_sequential_ones(trained) -> None:
    predictor = get_predictor(trained.checkpoint_dir, device="cpu")
    paths = [p for p, _ in trained.digits.val[:24]]
    expected = [predictor.predict(p) for p in paths]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(predictor.predict, paths))
    assert got == expected


def test_get_predictor_loads_once_per_process(trained) -> None:
    clear_predictor_cache()
    with ThreadPoolExecutor(max_workers=4) as pool:
        loaded = list(pool.map(lambda _: get_predictor(trained.checkpoint_dir, "cpu"), range(4)))
    assert all(p is loaded[0] for p in loaded)
    assert get_predictor(str(trained.checkpoint_dir), "cpu") is loaded[0]
    clear_predictor_cache()
    reloaded = get_predictor(trained.checkpoint_dir, "cpu")
    assert reloaded is not loaded[0]
    sidecar = trained.checkpoint_dir / SIDECAR_FILE
    stat = sidecar.stat()
    os.utime(sidecar, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # re-published
    assert get_predictor(trained.checkpoint_dir, "cpu") is not reloaded


def test_unreadable_image_is_a_clear_error(trained) -> None:
    predictor = get_predictor(trained.checkpoint_dir, device="cpu")
    with pytest.raises(BadImageError, match="not a readable image"):
        predictor.predict(b"GIF89a but broken")
