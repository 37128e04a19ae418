"""Metrics against a hand-made confusion matrix (and scikit-learn for average precision)."""

from __future__ import annotations

import numpy as np
import pytest

from model.metrics import average_precision, compute_metrics, confusion_matrix, threshold_metrics

# Three classes, ten images. Rows: true class, columns: predicted class.
#            pred 0  pred 1  pred 2
# true 0       3       1       0      support 4
# true 1       0       2       1      support 3
# true 2       1       0       2      support 3
HAND_CM = np.array([[3, 1, 0], [0, 2, 1], [1, 0, 2]])
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 0])
# Top probabilities: correct ones high, except one low-confidence correct prediction (index 2).
TOP_PROB = np.array([0.9, 0.8, 0.4, 0.7, 0.95, 0.6, 0.45, 0.85, 0.75, 0.55])


def _probabilities() -> np.ndarray:
    prob = np.zeros((10, 3))
    for row, (pred, top) in enumerate(zip(Y_PRED, TOP_PROB, strict=True)):
        prob[row] = (1 - top) / 2
        prob[row, pred] = top
    return prob


def test_confusion_matrix_matches_hand_count() -> None:
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, 3), HAND_CM)


def test_accuracy_precision_recall_f1_from_hand_matrix() -> None:
    m = compute_metrics(Y_TRUE, _probabilities(), ["cat", "dog", "fox"])
    assert m["confusion_matrix"] == HAND_CM.tolist()
    assert m["accuracy"] == pytest.approx(7 / 10)
    # precision = diagonal / column sums; recall = diagonal / row sums
    precision = [3 / 4, 2 / 3, 2 / 3]
    recall = [3 / 4, 2 / 3, 2 / 3]
    for c, row in enumerate(m["per_class"]):
        assert row["class"] == ["cat", "dog", "fox"][c]
        assert row["precision"] == pytest.approx(precision[c])
        assert row["recall"] == pytest.approx(recall[c])
        f1 = 2 * precision[c] * recall[c] / (precision[c] + recall[c])
        assert row["f1"] == pytest.approx(f1)
        assert row["support"] == HAND_CM[c].sum()
    assert m["macro_precision"] == pytest.approx(np.mean(precision))
    assert m["macro_recall"] == pytest.approx(np.mean(recall))


def test_threshold_counts_only_confident_predictions() -> None:
    # threshold 0.5 drops rows 2 (correct, 0.4) and 6 (wrong, 0.45): 8 counted, 6 correct.
    t = threshold_metrics(Y_TRUE, _probabilities(), 0.5)
    assert t["precision"] == pytest.approx(6 / 8)
    assert t["recall"] == pytest.approx(6 / 10)
    assert t["coverage"] == pytest.approx(8 / 10)
    # class 0: counted predictions are rows 0, 1, 9 -> 2 right; support 4
    assert t["per_class_precision"][0] == pytest.approx(2 / 3)
    assert t["per_class_recall"][0] == pytest.approx(2 / 4)
    # threshold 0 is plain top-1: precision = recall = accuracy
    t0 = threshold_metrics(Y_TRUE, _probabilities(), 0.0)
    assert t0["precision"] == t0["recall"] == pytest.approx(0.7)


def test_average_precision_by_hand_and_against_sklearn() -> None:
    # Ranked scores: + - + -  -> AP = (1/2)*1 + (1/2)*(2/3)
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(0.5 + 1 / 3)
    assert average_precision([0, 0], [0.3, 0.2]) is None

    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 1)  # many ties
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores)
    )
    m = compute_metrics(Y_TRUE, _probabilities())
    for c in range(3):
        expected = average_precision_score(Y_TRUE == c, _probabilities()[:, c])
        assert m["per_class"][c]["average_precision"] == pytest.approx(expected)
    assert m["mean_average_precision"] == pytest.approx(
        np.mean([r["average_precision"] for r in m["per_class"]])
    )


def test_undefined_figures_are_zero_or_none_and_json_safe() -> None:
    # class 2 never occurs and is never predicted
    prob = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1]])
    m = compute_metrics([0, 0], prob)
    assert m["per_class"][2]["precision"] == 0.0
    assert m["per_class"][2]["average_precision"] is None
    # macro over classes present in y_true or predictions: classes 0 and 1
    assert m["macro_recall"] == pytest.approx((0.5 + 0.0) / 2)
    empty = compute_metrics(np.zeros(0, dtype=int), np.zeros((0, 3)))
    assert empty["accuracy"] == 0.0 and empty["num_samples"] == 0


def test_bad_inputs_are_reported() -> None:
    with pytest.raises(ValueError, match="outside 0..2"):
        compute_metrics([0, 3], np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="shape"):
        compute_metrics([0], np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="2 labels but y_prob has 1 rows"):
        compute_metrics([0, 1], np.full((1, 3), 1 / 3))
