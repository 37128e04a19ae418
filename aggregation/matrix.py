"""Integer coding of an answer table: the one place where DataFrames become arrays.

Every method in this package works on an :class:`AnswerMatrix`: three parallel integer arrays
(one entry per answer) plus the three indexes that turn codes back into the caller's values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

COLUMNS = ("task", "worker", "label")


@dataclass(frozen=True, eq=False)
class KnownCodes:
    """Known (control) answers as codes: task ``tasks[i]`` has true label ``labels[i]``."""

    tasks: IntArray
    labels: IntArray

    @classmethod
    def empty(cls) -> KnownCodes:
        """No known answers."""
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.tasks)

    def clamp(self, proba: FloatArray) -> FloatArray:
        """Sets each known task's row of ``proba`` to its one-hot known label, in place."""
        if len(self):
            proba[self.tasks] = 0.0
            proba[self.tasks, self.labels] = 1.0
        return proba


@dataclass(frozen=True, eq=False)
class AnswerMatrix:
    """Answers as integer codes.

    Attributes:
        task: Task code of each answer, in ``[0, n_tasks)``.
        worker: Worker code of each answer, in ``[0, n_workers)``.
        label: Label code of each answer, in ``[0, n_labels)``.
        tasks: Task values by code, in order of first appearance.
        workers: Worker values by code, in order of first appearance.
        labels: Label values by code, sorted ascending, so code order is the tie rule of every
            method: among equally good labels the one that sorts first (lowest code) wins.
    """

    task: IntArray
    worker: IntArray
    label: IntArray
    tasks: pd.Index
    workers: pd.Index
    labels: pd.Index

    @property
    def n_answers(self) -> int:
        """Number of answers (rows), duplicates included."""
        return len(self.task)

    @property
    def n_tasks(self) -> int:
        """Number of distinct tasks."""
        return len(self.tasks)

    @property
    def n_workers(self) -> int:
        """Number of distinct workers."""
        return len(self.workers)

    @property
    def n_labels(self) -> int:
        """Number of labels (answered ones plus any extra label passed to :func:`encode`)."""
        return len(self.labels)

    @cached_property
    def pair(self) -> IntArray:
        """Code of the (worker, label) pair of each answer: ``worker * n_labels + label``."""
        return self.worker * self.n_labels + self.label

    @cached_property
    def pair_counts(self) -> FloatArray:
        """Answers per worker and label, shape ``(n_workers, n_labels)``."""
        flat = np.bincount(self.pair, minlength=self.n_workers * self.n_labels)
        return flat.reshape(self.n_workers, self.n_labels).astype(np.float64)

    @cached_property
    def label_counts(self) -> FloatArray:
        """Votes per task and label, shape ``(n_tasks, n_labels)``."""
        k = self.n_labels
        flat = np.bincount(self.task * k + self.label, minlength=self.n_tasks * k)
        return flat.reshape(self.n_tasks, k).astype(np.float64)

    @cached_property
    def worker_counts(self) -> FloatArray:
        """Answers per worker, shape ``(n_workers,)``."""
        return self.pair_counts.sum(axis=1)

    @cached_property
    def task_pair(self) -> sp.csr_matrix:
        """Sparse counts, shape ``(n_tasks, n_workers * n_labels)``: answers per task and pair.

        ``task_pair @ X`` sums the rows of ``X`` (one row per pair) over each task's answers;
        this is the whole E-step of the confusion-matrix models, with no loop over answers.
        """
        ones = np.ones(self.n_answers, dtype=np.float64)
        shape = (self.n_tasks, self.n_workers * self.n_labels)
        return sp.csr_matrix((ones, (self.task, self.pair)), shape=shape)

    @cached_property
    def pair_task(self) -> sp.csr_matrix:
        """Transpose of :attr:`task_pair` in CSR form: ``pair_task @ proba`` is the M-step."""
        return self.task_pair.T.tocsr()

    def to_frame(self) -> pd.DataFrame:
        """Decodes back to a ``task, worker, label`` DataFrame."""
        return pd.DataFrame(
            {
                "task": self.tasks.take(self.task),
                "worker": self.workers.take(self.worker),
                "label": self.labels.take(self.label),
            }
        )

    def encode_known(self, known: pd.Series | None) -> KnownCodes:
        """Codes a ``task -> label`` Series; tasks without answers here are ignored.

        Raises:
            ValueError: A known label is not among :attr:`labels` (pass it to :func:`encode`).
        """
        if known is None or known.empty:
            return KnownCodes.empty()
        known = known[known.notna() & ~known.index.duplicated(keep="last")]
        task_codes = self.tasks.get_indexer(known.index)
        present = task_codes >= 0
        label_codes = self.labels.get_indexer(known.to_numpy()[present])
        if (label_codes < 0).any():
            missing = known.to_numpy()[present][label_codes < 0][0]
            labels = list(self.labels)
            raise ValueError(f"known label {missing!r} is not one of the labels {labels}")
        return KnownCodes(task_codes[present].astype(np.int64), label_codes.astype(np.int64))


def _sorted_index(values: Iterable[Any]) -> pd.Index:
    uniques = pd.Index(pd.unique(np.asarray(list(values), dtype=object)))
    try:
        return uniques.sort_values()
    except TypeError:  # mixed types: sort by their text, still deterministic
        return uniques[np.argsort(uniques.astype(str), kind="stable")]


def encode(data: pd.DataFrame, extra_labels: Iterable[Any] = ()) -> AnswerMatrix:
    """Integer-codes a ``task, worker, label`` table once.

    Tasks and workers are coded in order of first appearance; labels are sorted ascending
    (by their text when the values are of mixed types) so that every tie rule is "the label
    that sorts first".

    Args:
        data: One row per answer with columns ``task``, ``worker`` and ``label``; other columns
            are ignored. Rows with a missing task, worker or label are dropped.
        extra_labels: Labels to include even if no answer has them (e.g. known answers).

    Returns:
        The coded answers.

    Raises:
        ValueError: A required column is missing.
    """
    missing = [c for c in COLUMNS if c not in data.columns]
    if missing:
        raise ValueError(f"answer table lacks column(s) {missing}; it needs {list(COLUMNS)}")
    data = data.loc[:, list(COLUMNS)]
    if data.isna().to_numpy().any():
        data = data.dropna()
    task_codes, tasks = pd.factorize(data["task"], sort=False)
    worker_codes, workers = pd.factorize(data["worker"], sort=False)
    label_codes, answered = pd.factorize(data["label"], sort=False)
    extra = [x for x in extra_labels if not pd.isna(x)]
    labels = _sorted_index([*answered, *extra])
    label_codes = labels.get_indexer(answered)[label_codes]  # recode into sorted order
    return AnswerMatrix(
        task=np.asarray(task_codes, dtype=np.int64),
        worker=np.asarray(worker_codes, dtype=np.int64),
        label=np.asarray(label_codes, dtype=np.int64),
        tasks=pd.Index(tasks, name="task"),
        workers=pd.Index(workers, name="worker"),
        labels=pd.Index(labels, name="label"),
    )
