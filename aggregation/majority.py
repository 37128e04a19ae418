"""Voting methods: plain majority vote and Wawa (worker agreement with aggregate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aggregation.base import Aggregator, ProgressFn, vote_shares
from aggregation.matrix import AnswerMatrix, FloatArray, KnownCodes

if TYPE_CHECKING:
    import pandas as pd


def _agreement(matrix: AnswerMatrix, label_codes: np.ndarray) -> FloatArray:
    """Share of each worker's answers equal to the task's chosen label."""
    hit = (matrix.label == label_codes[matrix.task]).astype(np.float64)
    agree = np.bincount(matrix.worker, hit, minlength=matrix.n_workers)
    return agree / np.maximum(matrix.worker_counts, 1.0)


@dataclass
class MajorityVote(Aggregator):
    """Majority vote: each task gets the label most of its answers have.

    Model: none; every answer counts once (duplicates included).
    ``posterior_[t, l]`` is the share of task ``t``'s answers that are ``l``, so the confidence
    of the chosen label is the share of the winning label (1.0 for a unanimous task).

    Tie rule: among labels with the same number of votes the one that sorts first wins
    (lowest label code; labels are sorted ascending by :func:`aggregation.encode`). crowd-kit's
    ``MajorityVote`` gives the same shares but, under pandas 3, breaks ties by the order of
    ``value_counts`` (not documented), so the two may differ on tied tasks only.

    Known answers fix those tasks to the known label with confidence 1.

    ``worker_accuracy_`` is each worker's agreement with the majority label (crowd-kit's
    ``skills_``).

    Reference: the baseline of every crowdsourcing paper; see e.g. Sheshadri & Lease,
    "SQUARE: A Benchmark for Research on Computing Crowd Consensus", HCOMP 2013.
    """

    def _fit_codes(
        self, matrix: AnswerMatrix, known: KnownCodes, on_progress: ProgressFn | None
    ) -> FloatArray:
        return known.clamp(vote_shares(matrix))

    def _worker_accuracy(self) -> FloatArray:
        return _agreement(self.matrix_, self.label_codes_)


@dataclass
class Wawa(Aggregator):
    """Wawa ("Worker Agreement With Aggregate"): majority vote weighted by agreement.

    Model: first a plain majority vote; each worker's skill is the share of their answers that
    agree with it; then each task gets the label with the largest sum of its voters' skills.
    ``posterior_[t, l]`` is label ``l``'s share of that skill sum (the confidence). A task whose
    voters all have skill 0 keeps its plain vote shares.

    Tie rule: both votes pick the label that sorts first (lowest code) among equal scores.

    Known answers fix those tasks' labels in the first vote (so they count when measuring
    agreement) and in the result (confidence 1).

    ``worker_accuracy_`` is the skill (agreement with the first, unweighted vote).
    Our own numpy implementation of crowd-kit's ``Wawa`` (crowd-kit drops duplicate
    ``task, worker, label`` rows when measuring agreement; we count every answer).

    Reference: Appen (CrowdFlower) "Wawa"; as described in crowd-kit's documentation,
    https://crowd-kit.readthedocs.io (Wawa).
    """

    def _fit_codes(
        self, matrix: AnswerMatrix, known: KnownCodes, on_progress: ProgressFn | None
    ) -> FloatArray:
        shares = known.clamp(vote_shares(matrix))
        skills = _agreement(matrix, shares.argmax(axis=1))
        self._skills = skills
        k = matrix.n_labels
        flat = np.bincount(
            matrix.task * k + matrix.label, skills[matrix.worker], minlength=matrix.n_tasks * k
        )
        scores = flat.reshape(matrix.n_tasks, k)
        total = scores.sum(axis=1, keepdims=True)
        weighted = np.divide(scores, total, out=shares.copy(), where=total > 0)
        return known.clamp(weighted)

    def _fit_empty(self) -> None:
        self._skills = np.zeros(self.matrix_.n_workers)

    def _worker_accuracy(self) -> FloatArray:
        return self._skills

    @property
    def skills_(self) -> pd.Series:
        """Worker -> skill (crowd-kit's name for ``worker_accuracy_``)."""
        return self.worker_accuracy_.rename("skill")
