"""Integer coding of an answer table: the one place where DataFrames become arrays.

Every method in this package works on an :class:`AnswerMatrix`: three parallel integer arrays
(one entry per answer) plus the three arrays of values that turn codes back into the caller's.

Two ways in: :func:`encode` from a DataFrame (pandas' factorize, fast for millions of rows) and
:func:`encode_lists` from plain sequences (dicts; no pandas import, for the command line and
for rows streamed from a database). pandas and scipy.sparse are imported on first use only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse as sp

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

COLUMNS = ("task", "worker", "label")

SPARSE_FROM = 200_000
"""From this many answers the sums run as scipy.sparse products (faster on big tables); below,
as ``numpy.bincount`` (no scipy import, which costs more than the whole fit of a small file)."""


class _GroupSum:
    """``self @ X``: row ``g`` of the result sums the rows ``X[source[a]]`` of the answers ``a``
    with ``group[a] == g``; the product of a 0/1 count matrix with ``X``, via ``bincount``."""

    def __init__(self, group: IntArray, source: IntArray, n_groups: int) -> None:
        self.group, self.source, self.n_groups = group, source, n_groups

    def __matmul__(self, x: FloatArray) -> FloatArray:
        out = np.empty((self.n_groups, x.shape[1]))
        for c in range(x.shape[1]):
            out[:, c] = np.bincount(self.group, x[self.source, c], minlength=self.n_groups)
        return out


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
        task_values: Task values by code (numpy array), in order of first appearance;
            :attr:`tasks` is the same as a pandas Index.
        worker_values: Worker values by code, in order of first appearance (:attr:`workers`).
        label_values: Label values by code, sorted ascending, so code order is the tie rule of
            every method: among equally good labels the one that sorts first (lowest code)
            wins (:attr:`labels`).
    """

    task: IntArray
    worker: IntArray
    label: IntArray
    task_values: npt.NDArray[Any]
    worker_values: npt.NDArray[Any]
    label_values: npt.NDArray[Any]

    @cached_property
    def tasks(self) -> pd.Index:
        """Task values by code, as a pandas Index named ``task``."""
        import pandas as pd

        return pd.Index(self.task_values, name="task")

    @cached_property
    def workers(self) -> pd.Index:
        """Worker values by code, as a pandas Index named ``worker``."""
        import pandas as pd

        return pd.Index(self.worker_values, name="worker")

    @cached_property
    def labels(self) -> pd.Index:
        """Label values by code, as a pandas Index named ``label``."""
        import pandas as pd

        return pd.Index(self.label_values, name="label")

    @property
    def n_answers(self) -> int:
        """Number of answers (rows), duplicates included."""
        return len(self.task)

    @property
    def n_tasks(self) -> int:
        """Number of distinct tasks."""
        return len(self.task_values)

    @property
    def n_workers(self) -> int:
        """Number of distinct workers."""
        return len(self.worker_values)

    @property
    def n_labels(self) -> int:
        """Number of labels (answered ones plus any extra label passed to :func:`encode`)."""
        return len(self.label_values)

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
        import scipy.sparse as sp

        ones = np.ones(self.n_answers, dtype=np.float64)
        shape = (self.n_tasks, self.n_workers * self.n_labels)
        return sp.csr_matrix((ones, (self.task, self.pair)), shape=shape)

    @cached_property
    def pair_task(self) -> sp.csr_matrix:
        """Transpose of :attr:`task_pair` in CSR form: ``pair_task @ proba`` is the M-step."""
        return self.task_pair.T.tocsr()

    @cached_property
    def task_sum(self) -> sp.csr_matrix | _GroupSum:
        """Acts as :attr:`task_pair` in ``task_sum @ X``: sparse for big tables, else bincount."""
        if self.n_answers >= SPARSE_FROM:
            return self.task_pair
        return _GroupSum(self.task, self.pair, self.n_tasks)

    @cached_property
    def pair_sum(self) -> sp.csr_matrix | _GroupSum:
        """Acts as :attr:`pair_task` in ``pair_sum @ proba``: sparse for big tables, else numpy."""
        if self.n_answers >= SPARSE_FROM:
            return self.pair_task
        return _GroupSum(self.pair, self.task, self.n_workers * self.n_labels)

    def to_frame(self) -> pd.DataFrame:
        """Decodes back to a ``task, worker, label`` DataFrame."""
        import pandas as pd

        return pd.DataFrame(
            {
                "task": self.tasks.take(self.task),
                "worker": self.workers.take(self.worker),
                "label": self.labels.take(self.label),
            }
        )

    def encode_known(self, known: pd.Series | Mapping[Any, Any] | None) -> KnownCodes:
        """Codes a ``task -> label`` Series (or dict); tasks without answers here are ignored.

        Raises:
            ValueError: A known label is not among :attr:`labels` (pass it to :func:`encode`).
        """
        if known is None or len(known) == 0:
            return KnownCodes.empty()
        if isinstance(known, Mapping):
            return self._encode_known_mapping(known)
        known = known[known.notna() & ~known.index.duplicated(keep="last")]
        task_codes = self.tasks.get_indexer(known.index)
        present = task_codes >= 0
        label_codes = self.labels.get_indexer(known.to_numpy()[present])
        if (label_codes < 0).any():
            missing = known.to_numpy()[present][label_codes < 0][0]
            labels = list(self.labels)
            raise ValueError(f"known label {missing!r} is not one of the labels {labels}")
        return KnownCodes(task_codes[present].astype(np.int64), label_codes.astype(np.int64))

    def _encode_known_mapping(self, known: Mapping[Any, Any]) -> KnownCodes:
        task_code = {value: code for code, value in enumerate(self.task_values.tolist())}
        label_code = {value: code for code, value in enumerate(self.label_values.tolist())}
        tasks, labels = [], []
        for task, label in known.items():
            code = task_code.get(task)
            if code is None or label is None:
                continue
            if label not in label_code:
                raise ValueError(
                    f"known label {label!r} is not one of the labels {self.label_values.tolist()}"
                )
            tasks.append(code)
            labels.append(label_code[label])
        return KnownCodes(np.array(tasks, dtype=np.int64), np.array(labels, dtype=np.int64))


def _object_array(values: Sequence[Any]) -> npt.NDArray[Any]:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _factorize(values: Iterable[Any]) -> tuple[IntArray, list[Any]]:
    """Codes in order of first appearance and the distinct values, with a dict."""
    seen: dict[Any, int] = {}
    codes = [seen.setdefault(v, len(seen)) for v in values]
    return np.array(codes, dtype=np.int64), list(seen)


def _sorted_values(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # mixed types: sort by their text, still deterministic
        return sorted(values, key=str)


def encode_lists(
    tasks: Sequence[Any],
    workers: Sequence[Any],
    labels: Sequence[Any],
    extra_labels: Iterable[Any] = (),
) -> AnswerMatrix:
    """As :func:`encode`, from three parallel sequences (one entry per answer), without pandas.

    Values must be hashable and not None (the caller drops incomplete answers).
    """
    if not len(tasks) == len(workers) == len(labels):
        raise ValueError("tasks, workers and labels must have one entry per answer each")
    task_codes, task_values = _factorize(tasks)
    worker_codes, worker_values = _factorize(workers)
    label_codes, answered = _factorize(labels)
    known = set(answered)
    extra = [x for x in extra_labels if x is not None and x not in known]
    ordered = _sorted_values([*answered, *dict.fromkeys(extra)])
    where = {value: code for code, value in enumerate(ordered)}
    recode = np.array([where[v] for v in answered], dtype=np.int64)
    return AnswerMatrix(
        task=task_codes,
        worker=worker_codes,
        label=recode[label_codes] if len(label_codes) else label_codes,
        task_values=_object_array(task_values),
        worker_values=_object_array(worker_values),
        label_values=_object_array(ordered),
    )


def encode_arrays(
    task: npt.NDArray[Any],
    worker: npt.NDArray[Any],
    label: IntArray,
    label_values: Sequence[Any],
) -> AnswerMatrix:
    """As :func:`encode`, from numpy arrays streamed from a database: task and worker keys of
    any hashable dtype (coded by first appearance with pandas' hash table) and labels already
    coded as indexes into ``label_values``, which must be sorted (the tie rule).

    Labels nobody answered are kept (they are the caller's, e.g. a project's options).
    """
    import pandas as pd

    if not len(task) == len(worker) == len(label):
        raise ValueError("task, worker and label must have one entry per answer each")
    task_codes, task_values = pd.factorize(task, sort=False)
    worker_codes, worker_values = pd.factorize(worker, sort=False)
    if len(label) and (label.min() < 0 or label.max() >= len(label_values)):
        raise ValueError("label codes must index label_values")
    return AnswerMatrix(
        task=np.asarray(task_codes, dtype=np.int64),
        worker=np.asarray(worker_codes, dtype=np.int64),
        label=np.asarray(label, dtype=np.int64),
        task_values=np.asarray(task_values),
        worker_values=np.asarray(worker_values),
        label_values=_object_array(list(label_values)),
    )


def _sorted_index(values: Iterable[Any]) -> pd.Index:
    import pandas as pd

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
    import pandas as pd

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
    indexes = {
        "tasks": pd.Index(tasks, name="task"),
        "workers": pd.Index(workers, name="worker"),
        "labels": pd.Index(labels, name="label"),
    }
    matrix = AnswerMatrix(
        task=np.asarray(task_codes, dtype=np.int64),
        worker=np.asarray(worker_codes, dtype=np.int64),
        label=np.asarray(label_codes, dtype=np.int64),
        task_values=indexes["tasks"].to_numpy(),
        worker_values=indexes["workers"].to_numpy(),
        label_values=indexes["labels"].to_numpy(),
    )
    matrix.__dict__.update(indexes)  # the cached indexes: the caller's dtypes, as given
    return matrix
