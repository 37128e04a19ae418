"""``auto``: choose among the methods by cross-fitting on control tasks, then calibrate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aggregation.base import Aggregator, ProgressFn
from aggregation.bayesian import BayesianDawidSkene
from aggregation.calibration import PlattCalibrator, expected_calibration_error
from aggregation.dawid_skene import DawidSkene, OneCoinDawidSkene
from aggregation.majority import MajorityVote, Wawa
from aggregation.matrix import AnswerMatrix, FloatArray, KnownCodes

DEFAULT = "bds"
"""The method used without control tasks."""
ANCHOR = "ds"
"""The method kept unless another beats it clearly on the control tasks."""


def _quick_glad() -> Aggregator:
    """GLAD with at most 10 EM iterations of at most 10 gradient steps: about 5x cheaper than
    the defaults, which spend most of auto's time for no measured gain in accuracy."""
    from aggregation.glad import GLAD

    return GLAD(n_iter=10, m_step_max_iter=10, optimizer="gradient")


def _candidates() -> dict[str, Callable[[], Aggregator]]:
    return {
        "bds": BayesianDawidSkene,
        "ds": DawidSkene,
        "one_coin_ds": OneCoinDawidSkene,
        "glad": _quick_glad,
        "wawa": Wawa,
        "mv": MajorityVote,
    }


@dataclass
class Auto(Aggregator):
    """Chooses the aggregation method by cross-fitting on the control tasks, then calibrates.

    With control tasks (``known``), the known tasks are split into ``folds`` folds; for each
    fold every candidate method (Bayesian DS, DS, one-coin DS, GLAD, Wawa, MV, and the mean
    of their posteriors) is fitted with the *other* folds' known answers clamped, and its
    posterior on the held-out fold's tasks is compared with their known labels. Each candidate
    so gets an honest held-out accuracy and log-likelihood on every control task. Dawid-Skene
    is kept unless another candidate beats it in a paired test on those control tasks (among
    the tasks where exactly one of the two is right, ``z`` standard deviations more wins than
    losses; the winner with most held-out correct labels, then the higher log-likelihood).
    The choice is then fitted on all answers with every known answer clamped, and the
    confidence of each chosen label is mapped by a
    :class:`~aggregation.calibration.PlattCalibrator` fitted on the held-out (confidence,
    correct) pairs of that method: the control tasks calibrate, the tasks scored never do.
    Known tasks keep their known label with confidence 1.

    Measured on 19 real crowds with 10% of the tasks as control tasks (``python
    bench/aggregation.py --real --seeds 3``): mean accuracy 0.839 on the other 90% (DS 0.831,
    DS ignoring the control tasks 0.825; no dataset more than 0.13 point below the better of
    the two), mean expected calibration error 0.041 (DS 0.129). The ECE is not at 0.03, and
    no map fitted on these control tasks alone can get it there: the ECE is at least
    ``|mean confidence - accuracy|``, and a map fitted on ``n`` control tasks knows the
    accuracy only to their sampling noise, about ``sqrt(acc (1 - acc) / n)`` (0.031 on
    average over those 19 sets, 11-830 control tasks). The same Platt map fitted on as many
    tasks drawn from the scored ones (no shift at all) measures 0.040 (the bench's "control
    set limit"). Tried without gain there: temperature-only maps, prior strength by ``n``,
    bagged or Laplace-moderated Platt, unclipped logits, a ceiling below 1, the answer count
    or vote share as extra inputs, and Bayesian DS posteriors averaged over sampled
    confusion matrices (as overconfident: the errors are correlated, not under-counted).

    Without control tasks: Bayesian DS, uncalibrated (``calibrated_`` is False).

    Args:
        folds: Number of cross-fitting folds (fewer when there are fewer control tasks).
        z: How many standard deviations another method must beat DS by (see ``_choose``).
        min_known: Fewer control tasks than this: no choice and no calibration.
        calibration_strength: Prior precision of the Platt map (see ``PlattCalibrator``).
        seed: Seed of the fold split.
        methods: Candidate names (default: all of them and ``mean``); must include ``ds``.

    Fitted attributes (besides :class:`~aggregation.base.Aggregator`'s):
        method_: The chosen method's name (``bds``, ``ds``, ``one_coin_ds``, ``glad``,
            ``wawa``, ``mv`` or ``mean``).
        scores_: Per candidate: held-out ``accuracy``, ``log_lik`` (mean per control task) and,
            for the chosen one, ``ece`` before and after calibration.
        calibrated_: Whether the confidences were calibrated on control tasks.
        heldout_confidence_ / heldout_correct_: The chosen method's cross-fitted
            (calibrated) confidence on each control task and whether its label was right.
        uncalibrated_posterior_: The chosen method's posterior before the Platt map
            (``posterior_`` itself when uncalibrated).
        model_: The fitted chosen model (``None`` for ``mean``).
    """

    folds: int = 5
    z: float = 1.5
    min_known: int = 10
    calibration_strength: float = 8.0
    seed: int = 0
    methods: tuple[str, ...] | None = None
    scores_: dict[str, dict[str, float]] = field(default_factory=dict, init=False, repr=False)

    def _fit_all(
        self,
        matrix: AnswerMatrix,
        known: KnownCodes,
        names: list[str],
        on_progress: ProgressFn | None = None,
    ) -> dict[str, tuple[FloatArray, Aggregator]]:
        classes = _candidates()
        out = {}
        fits = [name for name in names if name != "mean"]
        for i, name in enumerate(fits):

            def step(fraction: float, message: str, i: int = i) -> None:
                if on_progress is not None:  # one monotone bar over all the fits
                    on_progress((i + fraction) / len(fits), message)

            model = classes[name]().fit_matrix(matrix, known, step)
            out[name] = (model.posterior_, model)
        if "mean" in names:
            posts = [p for p, _ in out.values()]
            out["mean"] = (np.mean(posts, axis=0), out[DEFAULT][1])
        return out

    def _fit_codes(
        self, matrix: AnswerMatrix, known: KnownCodes, on_progress: ProgressFn | None
    ) -> FloatArray:
        names = list(self.methods) if self.methods else [*_candidates(), "mean"]
        if ANCHOR not in names:
            names.insert(0, ANCHOR)
        if "mean" in names and DEFAULT not in names:
            names.insert(0, DEFAULT)
        self.scores_ = {}
        self.calibrated_ = False
        self.heldout_confidence_ = np.zeros(0)
        self.heldout_correct_ = np.zeros(0)
        if len(known) < self.min_known:
            self.method_ = DEFAULT
            model = BayesianDawidSkene().fit_matrix(matrix, known, on_progress)
            self.model_: Aggregator | None = model
            self.uncalibrated_posterior_ = model.posterior_
            return model.posterior_
        n = len(known)
        k = matrix.n_labels
        folds = min(self.folds, n)
        order = np.random.default_rng(self.seed).permutation(n)
        fold_of = np.empty(n, dtype=np.int64)
        fold_of[order] = np.arange(n) % folds
        heldout = {name: np.zeros((n, k)) for name in names}
        for f in range(folds):
            train = fold_of != f
            sub = KnownCodes(known.tasks[train], known.labels[train])
            fitted = self._fit_all(matrix, sub, names)
            test = ~train
            for name, (post, _) in fitted.items():
                heldout[name][test] = post[known.tasks[test]]
            if on_progress is not None:
                on_progress((f + 1) / (folds + 1), f"cross-fitting fold {f + 1}/{folds}")
        rows = np.arange(n)
        self.heldout_posteriors_ = heldout
        self.method_ = self._choose(heldout, known)
        post = heldout[self.method_]
        labels = post.argmax(axis=1)
        raw = post[rows, labels]
        correct = (labels == known.labels).astype(np.float64)
        calibrator = PlattCalibrator(self.calibration_strength, floor=1.0 / k)
        calibrator.fit(raw, correct)
        self.calibrator_ = calibrator
        self.calibrated_ = True
        self.heldout_confidence_ = calibrator(raw)
        self.heldout_correct_ = correct
        self.scores_[self.method_]["ece_raw"] = expected_calibration_error(raw, correct)
        self.scores_[self.method_]["ece"] = expected_calibration_error(
            self.heldout_confidence_, correct
        )
        share = 1.0 / (folds + 1)

        def final(fraction: float, message: str) -> None:
            if on_progress is not None:
                on_progress(1.0 - share + share * fraction, f"{self.method_}: {message}")

        chosen = [self.method_] if self.method_ != "mean" else names
        fitted = self._fit_all(matrix, known, chosen, final)
        posterior, model = fitted[self.method_]
        self.model_ = None if self.method_ == "mean" else model
        self.uncalibrated_posterior_ = posterior
        self._top = posterior.argmax(axis=1).astype(np.int64)
        self._top[known.tasks] = known.labels
        return self._calibrate(posterior.copy(), known, calibrator)

    def _choose(self, heldout: dict[str, FloatArray], known: KnownCodes) -> str:
        """The anchor (DS), unless another method beats it on held-out control tasks.

        Another method wins only if, among the control tasks where exactly one of the two is
        right, it is right ``z`` standard deviations more often than DS (a McNemar-style
        paired test), so that selection noise on a few control tasks cannot cost accuracy.
        Among such winners the one with most held-out correct labels is chosen.
        """
        rows = np.arange(len(known))
        right = {}
        for name, post in heldout.items():
            correct = post.argmax(axis=1) == known.labels
            right[name] = correct
            log_lik = float(np.log(np.maximum(post[rows, known.labels], 1e-6)).mean())
            self.scores_[name] = {"accuracy": float(correct.mean()), "log_lik": log_lik}
        anchor = right[ANCHOR]
        best, best_key = ANCHOR, (float(anchor.sum()), self.scores_[ANCHOR]["log_lik"])
        for name, correct in right.items():
            wins = float((correct & ~anchor).sum())
            losses = float((anchor & ~correct).sum())
            if wins - losses < max(self.z * np.sqrt(wins + losses), 1.0):
                continue
            key = (float(correct.sum()), self.scores_[name]["log_lik"])
            if key > best_key:
                best, best_key = name, key
        return best

    @staticmethod
    def _calibrate(
        posterior: FloatArray, known: KnownCodes, calibrator: PlattCalibrator
    ) -> FloatArray:
        """Maps each row's top probability through ``calibrator``, rescaling the rest."""
        rows = np.arange(len(posterior))
        top = posterior.argmax(axis=1)
        top[known.tasks] = known.labels
        raw = posterior[rows, top]
        new = calibrator(raw)
        rest = 1.0 - raw
        scale = np.divide(1.0 - new, rest, out=np.zeros_like(rest), where=rest > 1e-12)
        posterior *= scale[:, None]
        posterior[rows, top] = new
        if posterior.shape[1] > 1:
            flat = rest <= 1e-12  # a one-hot row: share the rest equally
            if flat.any():
                posterior[flat] = ((1.0 - new[flat]) / (posterior.shape[1] - 1))[:, None]
                posterior[rows[flat], top[flat]] = new[flat]
        return known.clamp(posterior)

    def fit_matrix(
        self,
        matrix: AnswerMatrix,
        known: KnownCodes | None = None,
        on_progress: ProgressFn | None = None,
    ) -> Auto:
        """As :meth:`Aggregator.fit_matrix`; labels are the chosen method's (before calibration)."""
        self._top: Any = None
        super().fit_matrix(matrix, known, on_progress)
        if self._top is not None:
            self.label_codes_ = self._top
        return self

    def _fit_empty(self) -> None:
        self.method_ = DEFAULT
        self.model_ = None
        self.calibrated_ = False
        self.scores_ = {}
        self.uncalibrated_posterior_ = self.posterior_

    def summary(self) -> dict[str, Any]:
        """What was chosen and why: ``method``, ``calibrated``, ``scores``."""
        return {"method": self.method_, "calibrated": self.calibrated_, "scores": self.scores_}
