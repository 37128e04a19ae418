from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aggregation import encode, encode_arrays, encode_lists
from aggregation.matrix import SPARSE_FROM
from tests.aggregation.conftest import answers


def test_encode_codes_tasks_workers_in_first_appearance_and_labels_sorted():
    df = answers([("t2", "w9", "dog"), ("t1", "w1", "cat"), ("t2", "w1", "cat")])
    m = encode(df)
    assert list(m.tasks) == ["t2", "t1"]
    assert list(m.workers) == ["w9", "w1"]
    assert list(m.labels) == ["cat", "dog"]
    assert m.task.tolist() == [0, 1, 0]
    assert m.worker.tolist() == [0, 1, 1]
    assert m.label.tolist() == [1, 0, 0]
    pd.testing.assert_frame_equal(m.to_frame(), df, check_dtype=False)


def test_encode_counts_and_sparse_task_pair_matrix():
    df = answers([("a", "x", "1"), ("a", "y", "1"), ("a", "x", "1"), ("b", "y", "2")])
    m = encode(df)
    assert m.label_counts.tolist() == [[3.0, 0.0], [0.0, 1.0]]
    assert m.worker_counts.tolist() == [2.0, 2.0]
    dense = m.task_pair.toarray()  # columns: (x,1) (x,2) (y,1) (y,2)
    assert dense.tolist() == [[2, 0, 1, 0], [0, 0, 0, 1]]
    assert np.array_equal(m.pair_task.toarray(), dense.T)


def test_encode_extra_labels_and_mixed_types_sort_deterministically():
    m = encode(answers([("a", "x", "b")]), extra_labels=["a", "c"])
    assert list(m.labels) == ["a", "b", "c"]
    mixed = encode(pd.DataFrame({"task": [1, 2], "worker": [1, 1], "label": ["z", 3]}))
    assert list(mixed.labels) == [3, "z"]


def test_encode_drops_rows_with_missing_values_and_requires_columns():
    df = answers([("a", "x", "1"), ("b", "y", None)])  # type: ignore[list-item]
    assert encode(df).n_answers == 1
    with pytest.raises(ValueError, match="label"):
        encode(df.drop(columns="label"))


def test_encode_known_ignores_unanswered_tasks_and_rejects_unknown_labels():
    m = encode(answers([("a", "x", "1"), ("b", "x", "2")]))
    known = m.encode_known(pd.Series({"b": "1", "zzz": "2"}))
    assert known.tasks.tolist() == [1] and known.labels.tolist() == [0]
    with pytest.raises(ValueError, match="'3'"):
        m.encode_known(pd.Series({"a": "3"}))


def test_encode_lists_codes_as_encode_does_without_pandas():
    rows = [("t2", "w9", "dog"), ("t1", "w1", "cat"), ("t2", "w1", "cat"), ("t3", "w9", "bird")]
    tasks, workers, labels = (list(column) for column in zip(*rows, strict=True))
    fast = encode_lists(tasks, workers, labels, extra_labels=["ant", "cat"])
    slow = encode(answers(rows), extra_labels=["ant", "cat"])
    for name in ("task", "worker", "label"):
        assert getattr(fast, name).tolist() == getattr(slow, name).tolist()
    assert list(fast.labels) == list(slow.labels) == ["ant", "bird", "cat", "dog"]
    assert list(fast.tasks) == ["t2", "t1", "t3"] and fast.tasks.name == "task"
    known = fast.encode_known({"t3": "ant", "nowhere": "cat"})
    assert known.tasks.tolist() == [2] and known.labels.tolist() == [0]
    with pytest.raises(ValueError, match="'zebra'"):
        fast.encode_known({"t1": "zebra"})


def test_encode_arrays_takes_integer_keys_and_coded_labels():
    m = encode_arrays(np.array([7, 5, 7]), np.array([1, 1, 2]), np.array([1, 0, 1]), ["a", "b"])
    assert list(m.tasks) == [7, 5] and m.task.tolist() == [0, 1, 0]
    assert list(m.labels) == ["a", "b"] and m.label.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="label codes"):
        encode_arrays(np.array([1]), np.array([1]), np.array([2]), ["a", "b"])


def test_bincount_sums_equal_the_sparse_products():
    rng = np.random.default_rng(0)
    n = 500
    df = pd.DataFrame(
        {
            "task": rng.integers(0, 60, n),
            "worker": rng.integers(0, 9, n),
            "label": rng.integers(0, 3, n),
        }
    )
    m = encode(df)
    assert m.n_answers < SPARSE_FROM  # the numpy path
    x = rng.random((m.n_workers * m.n_labels, m.n_labels))
    proba = rng.random((m.n_tasks, m.n_labels))
    assert np.allclose(m.task_sum @ x, m.task_pair @ x)
    assert np.allclose(m.pair_sum @ proba, m.pair_task @ proba)
