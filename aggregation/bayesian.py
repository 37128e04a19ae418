"""Bayesian Dawid-Skene (BCC): Dirichlet priors on the confusion matrices, variational EM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aggregation.base import Aggregator, ProgressFn, log_softmax_rows, vote_shares
from aggregation.matrix import AnswerMatrix, FloatArray, KnownCodes

if TYPE_CHECKING:
    import pandas as pd


def _digamma(x: FloatArray) -> FloatArray:
    """Digamma for ``x > 0`` (recurrence up to 6, then the asymptotic series); numpy only.

    Keeps scipy out of the import path; accurate to about 1e-10 for the pseudo-counts here.
    """
    x = np.asarray(x, dtype=np.float64).copy()
    shift = np.zeros_like(x)
    for _ in range(6):
        small = x < 6.0
        if not small.any():
            break
        shift -= np.where(small, 1.0 / x, 0.0)
        x = np.where(small, x + 1.0, x)
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return shift + np.log(x) - 0.5 * inv - series


@dataclass
class BayesianDawidSkene(Aggregator):
    """Bayesian Dawid-Skene (independent Bayesian classifier combination), variational EM.

    Model: as :class:`~aggregation.DawidSkene` (task ``t`` has a hidden label ``z_t`` with prior
    ``p``; worker ``w`` answers ``y`` with probability ``e_w[y, c]`` when ``z_t = c``), with
    Dirichlet priors: each column ``e_w[:, c]`` ~ Dir(``b`` everywhere, ``a`` on the diagonal),
    so a worker is presumed better than chance until their answers say otherwise, and ``p`` ~
    Dir(``alpha``). Variational Bayes alternates the posterior of every ``z_t`` (using
    ``E[log e_w[y, c]] = digamma(n_wyc + prior) - digamma(sum_y ...)``) and the Dirichlet
    posteriors of ``e_w`` and ``p`` from soft counts, until no posterior moves by more than
    ``tol``. Unlike maximum-likelihood DS, a worker with few answers keeps an uncertain
    confusion matrix, which keeps the posteriors from collapsing to 0/1 (better calibrated).

    Papers: H.-C. Kim and Z. Ghahramani, "Bayesian Classifier Combination", AISTATS 2012;
    E. Simpson et al., "Dynamic Bayesian Combination of Multiple Imperfect Classifiers", 2013;
    the prior strengths (4 on the diagonal, 1 elsewhere) follow Y. Li et al., "Exploiting
    Worker Correlation for Label Aggregation in Crowdsourcing" (EBCC), ICML 2019.

    Confidence is the posterior of the chosen label; tie rule: the label that sorts first.
    Known answers fix those tasks' posteriors to the known label at every step.

    Args:
        diagonal: Prior pseudo-count ``a`` of a correct answer per true class.
        off_diagonal: Prior pseudo-count ``b`` of each wrong answer per true class.
        class_prior: Pseudo-count ``alpha`` of each class in the label prior.
        n_iter: Maximum number of iterations.
        tol: Stop once no task's posterior changes by more than this.

    Fitted attributes (besides :class:`~aggregation.base.Aggregator`'s):
        confusion_: ``(n_workers, n_labels, n_labels)`` posterior-mean confusion matrices
            ``[worker, observed, true]``.
        pseudo_counts_: The Dirichlet posterior parameters, same shape.
        prior_: Posterior-mean label prior. ``n_iter_``: iterations run.
    """

    diagonal: float = 4.0
    off_diagonal: float = 1.0
    class_prior: float = 1.0
    n_iter: int = 200
    tol: float = 1e-5

    def _fit_codes(
        self, matrix: AnswerMatrix, known: KnownCodes, on_progress: ProgressFn | None
    ) -> FloatArray:
        w, k = matrix.n_workers, matrix.n_labels
        task_pair, pair_task = matrix.task_sum, matrix.pair_sum
        prior_counts = np.full((k, k), self.off_diagonal)
        np.fill_diagonal(prior_counts, self.diagonal)
        proba = known.clamp(vote_shares(matrix))
        self.n_iter_ = 0
        for it in range(self.n_iter):
            counts = (pair_task @ proba).reshape(w, k, k) + prior_counts[None]
            e_log = _digamma(counts) - _digamma(counts.sum(axis=1, keepdims=True))
            class_counts = proba.sum(axis=0) + self.class_prior
            e_log_prior = _digamma(class_counts) - _digamma(np.array([class_counts.sum()]))
            log_lik = task_pair @ e_log.reshape(w * k, k)
            log_lik += e_log_prior
            new, _ = log_softmax_rows(log_lik)
            known.clamp(new)
            change = float(np.abs(new - proba).max())
            proba = new
            self.n_iter_ = it + 1
            if on_progress is not None:
                message = f"EM iteration {it + 1}/{self.n_iter} (variational), change {change:.1e}"
                on_progress((it + 1) / self.n_iter, message)
            if change < self.tol:
                break
        counts = (pair_task @ proba).reshape(w, k, k) + prior_counts[None]
        self.pseudo_counts_ = counts
        self.confusion_ = counts / counts.sum(axis=1, keepdims=True)
        class_counts = proba.sum(axis=0) + self.class_prior
        self.prior_ = class_counts / class_counts.sum()
        return proba

    def _fit_empty(self) -> None:
        k = self.matrix_.n_labels
        self.confusion_ = np.zeros((0, k, k))
        self.pseudo_counts_ = np.zeros((0, k, k))
        self.prior_ = np.zeros(k)
        self.n_iter_ = 0

    @property
    def priors_(self) -> pd.Series:
        """Label -> posterior-mean prior probability of a task's true label."""
        import pandas as pd

        return pd.Series(self.prior_, index=self.matrix_.labels, name="prior")
