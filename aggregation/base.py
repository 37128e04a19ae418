"""The shape every aggregation method shares: ``fit / fit_predict / fit_predict_proba``.

A method implements :meth:`Aggregator._fit_codes` over an :class:`AnswerMatrix`; this base
class does the coding at the edge and turns the fitted arrays into pandas objects on access.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

import numpy as np

from aggregation.matrix import AnswerMatrix, FloatArray, IntArray, KnownCodes, encode

if TYPE_CHECKING:
    import pandas as pd

ProgressFn = Callable[[float, str], None]
"""``on_progress(fraction, message)``: fraction in [0, 1] of the work done so far."""

EPS = 1e-10
"""Smallest probability the EM models use (crowd-kit's ``_EPS``), so logs stay finite."""


def _row_reduce(a: FloatArray, op: np.ufunc) -> FloatArray:
    """Reduces each row with the binary ufunc ``op``; returns a ``(n, 1)`` column.

    A loop over the few columns: about 10x faster than an ``axis=1`` reduction on a tall
    array with a handful of columns.
    """
    out = a[:, 0].copy()
    for c in range(1, a.shape[1]):
        op(out, a[:, c], out=out)
    return out[:, None]


def softmax_rows(log_lik: FloatArray) -> FloatArray:
    """Normalises each row of log-likelihoods to probabilities (max-shifted, in place)."""
    log_lik -= _row_reduce(log_lik, np.maximum)
    np.exp(log_lik, out=log_lik)
    log_lik /= _row_reduce(log_lik, np.add)
    return log_lik


def log_softmax_rows(log_lik: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Row-normalised probabilities and their logs; ``log_lik`` becomes the logs (in place)."""
    log_lik -= _row_reduce(log_lik, np.maximum)
    proba = np.exp(log_lik)
    total = _row_reduce(proba, np.add)
    proba /= total
    log_lik -= np.log(total)
    return proba, log_lik


def vote_shares(matrix: AnswerMatrix) -> FloatArray:
    """Share of each task's answers per label, shape ``(n_tasks, n_labels)``."""
    counts = matrix.label_counts.copy()
    counts /= _row_reduce(counts, np.add)
    return counts


class Aggregator(ABC):
    """Base class of the aggregation methods.

    Fitted attributes (available after ``fit``):
        matrix_: The coded answers the model was fitted on.
        posterior_: ``(n_tasks, n_labels)`` array; row ``t`` is the label distribution of task
            ``t`` (vote shares for the voting methods, posteriors for the EM models).
        label_codes_: Chosen label code per task: the first maximum of ``posterior_`` along the
            row, so ties go to the label that sorts first.
        labels_: ``pandas.Series`` task -> chosen label.
        probas_: ``pandas.DataFrame`` task x label of ``posterior_``.
        confidence_: ``pandas.Series`` task -> probability of the chosen label, in [0, 1].
        worker_accuracy_: ``pandas.Series`` worker -> estimated share of correct answers
            (definition per method).
    """

    matrix_: AnswerMatrix
    posterior_: FloatArray
    label_codes_: IntArray

    def fit(
        self,
        data: pd.DataFrame,
        known: pd.Series | None = None,
        on_progress: ProgressFn | None = None,
    ) -> Self:
        """Fits the model to a ``task, worker, label`` DataFrame.

        Args:
            data: One row per answer.
            known: Optional known (control) answers, a Series indexed by task holding the true
                label; those tasks' distributions are fixed to the known label.
            on_progress: Called as ``on_progress(fraction, message)`` while fitting.

        Returns:
            self.
        """
        import pandas as pd

        if known is not None and "task" in data.columns:
            known = known[known.index.isin(data["task"])]  # tasks with answers only
        extra = () if known is None else pd.unique(known.dropna())
        matrix = encode(data, extra_labels=extra)
        return self.fit_matrix(matrix, matrix.encode_known(known), on_progress)

    def fit_matrix(
        self,
        matrix: AnswerMatrix,
        known: KnownCodes | None = None,
        on_progress: ProgressFn | None = None,
    ) -> Self:
        """Fits the model to already coded answers (no pandas on this path).

        Args:
            matrix: The coded answers.
            known: Known answers as codes.
            on_progress: Called as ``on_progress(fraction, message)`` while fitting.

        Returns:
            self.
        """
        self.matrix_ = matrix
        known = known if known is not None else KnownCodes.empty()
        if matrix.n_tasks == 0:
            self.posterior_ = np.zeros((0, matrix.n_labels))
            self.label_codes_ = np.zeros(0, dtype=np.int64)
            self._fit_empty()
        else:
            self.posterior_ = self._fit_codes(matrix, known, on_progress)
            self.label_codes_ = self.posterior_.argmax(axis=1).astype(np.int64)
        if on_progress is not None:
            on_progress(1.0, "fitted")
        return self

    def fit_predict(self, data: pd.DataFrame, known: pd.Series | None = None) -> pd.Series:
        """Fits and returns the chosen label per task (``labels_``)."""
        return self.fit(data, known).labels_

    def fit_predict_proba(self, data: pd.DataFrame, known: pd.Series | None = None) -> pd.DataFrame:
        """Fits and returns the label distribution per task (``probas_``)."""
        return self.fit(data, known).probas_

    @abstractmethod
    def _fit_codes(
        self, matrix: AnswerMatrix, known: KnownCodes, on_progress: ProgressFn | None
    ) -> FloatArray:
        """Fits on codes, sets the method's own fitted arrays, returns ``posterior_``."""

    def _fit_empty(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Sets the method's own fitted arrays for a table with no answers."""

    def _worker_accuracy(self) -> FloatArray:
        """Expected share of each worker's answers that are correct under ``posterior_``."""
        m = self.matrix_
        hit = np.bincount(m.worker, self.posterior_[m.task, m.label], minlength=m.n_workers)
        return hit / np.maximum(m.worker_counts, 1.0)

    @property
    def labels_(self) -> pd.Series:
        """Task -> chosen label."""
        import pandas as pd

        m = self.matrix_
        return pd.Series(m.labels.take(self.label_codes_), index=m.tasks, name="label")

    @property
    def probas_(self) -> pd.DataFrame:
        """Task x label distribution (rows sum to 1)."""
        import pandas as pd

        return pd.DataFrame(self.posterior_, index=self.matrix_.tasks, columns=self.matrix_.labels)

    @property
    def confidence_(self) -> pd.Series:
        """Task -> probability of the chosen label, clipped to [0, 1]."""
        import pandas as pd

        return pd.Series(self.confidence_array(), index=self.matrix_.tasks, name="confidence")

    @property
    def worker_accuracy_(self) -> pd.Series:
        """Worker -> estimated share of correct answers."""
        import pandas as pd

        acc = self._worker_accuracy()
        return pd.Series(acc, index=self.matrix_.workers, name="accuracy")

    def confidence_array(self) -> FloatArray:
        """Probability of the chosen label per task code, clipped to [0, 1]."""
        rows = np.arange(len(self.label_codes_))
        return np.clip(self.posterior_[rows, self.label_codes_], 0.0, 1.0)

    def result_rows(self) -> list[tuple[object, object, float]]:
        """``(task, label, confidence)`` per task in order of first appearance; no pandas."""
        m = self.matrix_
        labels = m.label_values[self.label_codes_]
        confidence = self.confidence_array().tolist()
        rows = zip(m.task_values.tolist(), labels.tolist(), confidence, strict=True)
        return list(rows)

    def result_frame(self) -> pd.DataFrame:
        """One row per task: ``task, label, confidence``, tasks in order of first appearance."""
        import pandas as pd

        m = self.matrix_
        return pd.DataFrame(
            {
                "task": m.tasks.to_numpy(),
                "label": m.labels.take(self.label_codes_).to_numpy(),
                "confidence": self.confidence_array(),
            }
        )
