"""GLAD: worker ability and task difficulty, fitted by EM with a conjugate-gradient M-step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aggregation.base import Aggregator, ProgressFn, softmax_rows
from aggregation.matrix import AnswerMatrix, FloatArray, IntArray, KnownCodes

if TYPE_CHECKING:
    import pandas as pd

_LOG_SQRT_2PI = 0.5 * float(np.log(2.0 * np.pi))


def _sums(codes: IntArray, weights: FloatArray, n: int) -> FloatArray:
    """Sum of ``weights`` per code in ``[0, n)``."""
    return np.asarray(np.bincount(codes, weights, minlength=n), dtype=np.float64)


@dataclass
class GLAD(Aggregator):
    """GLAD (Generative model of Labels, Abilities, and Difficulties).

    Model: worker ``w`` has ability ``alpha_w`` (negative for adversaries), task ``t`` has
    ``beta_t`` with ``exp(beta_t)`` its inverse difficulty. Worker ``w`` gives the true label of
    task ``t`` with probability ``sigmoid(alpha_w * exp(beta_t))`` and each of the ``K - 1``
    other labels with an equal share of the rest. The label prior is uniform; ``alpha`` and
    ``beta`` have standard-normal priors around ``alpha_prior_mean`` and ``beta_prior_mean``.
    EM: the E-step computes task posteriors in log space; the M-step maximises the expected
    log-posterior over all ``alpha`` and ``beta`` with scipy's conjugate gradient (at most
    ``m_step_max_iter`` steps, tolerance ``m_step_tol``) from the previous values.

    Paper: J. Whitehill, P. Ruvolo, T. Wu, J. Bergsma and J. Movellan, "Whose Vote Should Count
    More: Optimal Integration of Labels from Labelers of Unknown Expertise", NIPS 2009.

    Our own vectorised implementation of crowd-kit's ``GLAD`` (same initialisation
    ``alpha = beta = 1``, same objective, gradient, optimiser settings and stopping rule: the
    first iteration whose per-(answer, label) objective gains less than ``tol``), with
    ``numpy.bincount`` sums in place of pandas group-bys. That objective leaves out the
    posterior entropy, so it need not rise from one EM iteration to the next and the rule often
    stops after two or three iterations; we keep it for parity with crowd-kit.

    Confidence is the posterior of the chosen label. Tie rule: the label that sorts first.
    Known answers fix those tasks' posteriors to the known label after every E-step.

    Args:
        n_iter: Maximum number of EM iterations.
        tol: Stop once the objective improves by less than this.
        m_step_max_iter: Conjugate-gradient iterations per M-step.
        m_step_tol: Conjugate-gradient tolerance.
        optimizer: ``cg`` (scipy's conjugate gradient, as crowd-kit) or ``gradient`` (our numpy
            L-BFGS; no scipy import).
        alpha_prior_mean: Mean of the normal prior on abilities.
        beta_prior_mean: Mean of the normal prior on log inverse difficulties.

    Fitted attributes (besides :class:`~aggregation.base.Aggregator`'s):
        alpha_ / alphas_: Worker abilities (array / Series).
        beta_ / betas_: Task log inverse difficulties (array / Series).
        loss_history_: Objective after each iteration; ``n_iter_`` is its length.
        worker_accuracy_: Expected share of each worker's answers that are correct under the
            posteriors.
    """

    n_iter: int = 100
    tol: float = 1e-5
    m_step_max_iter: int = 25
    m_step_tol: float = 1e-2
    alpha_prior_mean: float = 1.0
    beta_prior_mean: float = 1.0
    optimizer: str = "cg"

    def __post_init__(self) -> None:
        if self.optimizer not in ("cg", "gradient"):
            raise ValueError(f"optimizer must be 'cg' or 'gradient', not {self.optimizer!r}")

    def _fit_codes(
        self, matrix: AnswerMatrix, known: KnownCodes, on_progress: ProgressFn | None
    ) -> FloatArray:
        model = _GladTerms(matrix, self.alpha_prior_mean, self.beta_prior_mean)
        alpha, beta = np.ones(matrix.n_workers), np.ones(matrix.n_tasks)
        proba = known.clamp(model.posterior(alpha, beta))
        q = model.objective(alpha, beta, proba)
        scale = matrix.n_answers * matrix.n_labels  # crowd-kit divides by its melted rows
        self.loss_history_: list[float] = []
        for it in range(self.n_iter):
            last_q = q
            proba = known.clamp(model.posterior(alpha, beta))
            alpha, beta, q_total = self._m_step(model, alpha, beta, proba)
            q = q_total / scale
            self.loss_history_.append(q)
            if on_progress is not None:
                message = f"EM iteration {it + 1}/{self.n_iter}, objective {q:.6f}"
                on_progress((it + 1) / self.n_iter, message)
            if q - last_q < self.tol:
                break
        self.n_iter_ = len(self.loss_history_)
        self.alpha_, self.beta_ = alpha, beta
        return proba

    def _m_step(
        self, model: _GladTerms, alpha: FloatArray, beta: FloatArray, proba: FloatArray
    ) -> tuple[FloatArray, FloatArray, float]:
        """Conjugate gradient over all ``alpha`` and ``beta`` at once.

        Returns the new ``alpha``, ``beta`` and the objective there (the optimiser's own last
        value, so the EM loop needs no extra evaluation).
        """
        if self.optimizer == "gradient":
            return self._m_step_gradient(model, alpha, beta, proba)
        from scipy.optimize import minimize  # lazy: scipy.optimize costs ~0.3 s to import

        n_workers = len(alpha)
        negative = model.negative_objective(proba)
        res = minimize(
            negative,
            np.concatenate([alpha, beta]),
            jac=True,
            method="CG",
            tol=self.m_step_tol,
            options={"maxiter": self.m_step_max_iter},
        )
        x = np.asarray(res.x, dtype=np.float64)
        return x[:n_workers].copy(), x[n_workers:].copy(), -float(res.fun)

    def _m_step_gradient(
        self, model: _GladTerms, alpha: FloatArray, beta: FloatArray, proba: FloatArray
    ) -> tuple[FloatArray, FloatArray, float]:
        """L-BFGS (memory 5) with a backtracking line search, numpy only.

        ``m_step_max_iter`` steps at most; stops once the gradient's norm is below
        ``m_step_tol``. Cheaper than importing scipy.optimize for the short fits of ``auto``.
        """
        negative = model.negative_objective(proba)
        n_workers = len(alpha)
        x = np.concatenate([alpha, beta])
        f, g = negative(x)
        history: list[tuple[FloatArray, FloatArray, float]] = []
        for _ in range(self.m_step_max_iter):
            if float(np.sqrt(g @ g)) < self.m_step_tol:
                break
            direction = _lbfgs_direction(g, history)
            slope = float(g @ direction)
            if slope >= 0:  # not a descent direction: fall back to the gradient
                direction, slope, history = -g, -float(g @ g), []
            t = 1.0 if history else 1.0 / max(float(np.sqrt(g @ g)), 1.0)
            while True:  # backtracking until the objective rises enough (Armijo)
                new_x = x + t * direction
                new_f, new_g = negative(new_x)
                if new_f <= f + 1e-4 * t * slope or t < 1e-10:
                    break
                t /= 2
            if new_f > f:
                break
            s, y = new_x - x, new_g - g
            sy = float(s @ y)
            if sy > 1e-12:
                history = [*history[-4:], (s, y, 1.0 / sy)]
            x, f, g = new_x, new_f, new_g
        return x[:n_workers].copy(), x[n_workers:].copy(), -float(f)

    def _fit_empty(self) -> None:
        self.alpha_, self.beta_ = np.zeros(0), np.zeros(0)
        self.loss_history_ = []
        self.n_iter_ = 0

    @property
    def alphas_(self) -> pd.Series:
        """Worker -> ability ``alpha_w``."""
        import pandas as pd

        return pd.Series(self.alpha_, index=self.matrix_.workers, name="alpha")

    @property
    def betas_(self) -> pd.Series:
        """Task -> log inverse difficulty ``beta_t``."""
        import pandas as pd

        return pd.Series(self.beta_, index=self.matrix_.tasks, name="beta")


def _lbfgs_direction(
    g: FloatArray, history: list[tuple[FloatArray, FloatArray, float]]
) -> FloatArray:
    """L-BFGS two-loop recursion: ``-H g`` from the last (step, gradient change) pairs."""
    q = g.copy()
    alphas = []
    for s, y, rho in reversed(history):
        a = rho * float(s @ q)
        q -= a * y
        alphas.append(a)
    if history:
        s, y, _ = history[-1]
        q *= float(s @ y) / float(y @ y)
    for (s, y, rho), a in zip(history, reversed(alphas), strict=True):
        b = rho * float(y @ q)
        q += (a - b) * s
    return -q


class _GladTerms:
    """Per-answer arrays and the vectorised E-step, objective and gradient of GLAD.

    With ``x = alpha[worker] * exp(beta[task])`` per answer, the answer's log-probability is
    ``right = log sigmoid(x)`` if its label is the true one and ``wrong = right - x - log(K - 1)``
    otherwise (as ``log(1 - sigmoid(x)) = log sigmoid(x) - x``), so one ``exp`` and one ``log``
    per answer give both terms and ``sigmoid(x)`` for the gradient; the objective and its
    gradient are then dot products and two ``bincount`` sums (per worker, per task). The
    per-answer work runs in preallocated buffers: the M-step evaluates it a few hundred times.
    """

    def __init__(self, matrix: AnswerMatrix, alpha_mean: float, beta_mean: float) -> None:
        self.task, self.worker, self.label = matrix.task, matrix.worker, matrix.label
        self.n_tasks, self.n_workers, self.n_labels = (
            matrix.n_tasks,
            matrix.n_workers,
            matrix.n_labels,
        )
        self.log_others = float(np.log(max(self.n_labels - 1, 1)))
        self.log_prior = -float(np.log(self.n_labels))
        self.alpha_mean, self.beta_mean = alpha_mean, beta_mean
        self.cell = self.task * self.n_labels + self.label  # (task, given label) per answer
        n = matrix.n_answers
        self._scale, self._x, self._e, self._log_sig, self._sig = (np.empty(n) for _ in range(5))

    def _terms(self, alpha: FloatArray, beta: FloatArray) -> tuple[FloatArray, ...]:
        """Per answer: ``exp(beta_t)``, ``x``, ``log sigmoid(x)`` and ``sigmoid(x)``.

        The four arrays are this object's buffers, overwritten by the next call.
        """
        scale, x, e, log_sig, sig = self._scale, self._x, self._e, self._log_sig, self._sig
        np.take(np.exp(beta), self.task, out=scale)
        np.take(alpha, self.worker, out=x)
        x *= scale
        # e = exp(-|x|) in (0, 1]; log sigmoid(x) = min(x, 0) - log(1 + e)
        np.abs(x, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)
        e += 1.0
        np.minimum(x, 0.0, out=log_sig)
        np.log(e, out=sig)
        log_sig -= sig
        # sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) = 1 - 1 / (1 + e) for x < 0
        np.reciprocal(e, out=sig)
        sig -= 0.5
        np.copysign(sig, x, out=sig)
        sig += 0.5
        return scale, x, log_sig, sig

    def posterior(self, alpha: FloatArray, beta: FloatArray) -> FloatArray:
        """E-step: task x label posteriors."""
        _, x, log_sig, _ = self._terms(alpha, beta)
        t, k = self.n_tasks, self.n_labels
        wrong = log_sig - x - self.log_others
        base = _sums(self.task, wrong, t)
        # right - wrong = x + log(K - 1) on the answer's own label
        log_lik = _sums(self.cell, x + self.log_others, t * k).reshape(t, k)
        log_lik += base[:, None] + self.log_prior
        return softmax_rows(log_lik)

    def _prior_terms(self, alpha: FloatArray, beta: FloatArray) -> float:
        za, zb = alpha - self.alpha_mean, beta - self.beta_mean
        n = len(za) + len(zb)
        return -0.5 * float(za @ za + zb @ zb) - n * _LOG_SQRT_2PI

    def objective(self, alpha: FloatArray, beta: FloatArray, proba: FloatArray) -> float:
        """Expected log-posterior of ``alpha, beta`` under the task posteriors."""
        return self.objective_and_gradient(alpha, beta, proba[self.task, self.label])[0]

    def objective_and_gradient(
        self, alpha: FloatArray, beta: FloatArray, p_given: FloatArray
    ) -> tuple[float, FloatArray, FloatArray]:
        """Objective and its gradient in ``alpha`` and ``beta``.

        Args:
            alpha: Worker abilities.
            beta: Task log inverse difficulties.
            p_given: Posterior probability of each answer's own label.
        """
        p_wrong = 1.0 - p_given
        return self._objective_and_gradient(alpha, beta, p_given, p_wrong, float(p_wrong.sum()))

    def _objective_and_gradient(
        self,
        alpha: FloatArray,
        beta: FloatArray,
        p_given: FloatArray,
        p_wrong: FloatArray,
        p_wrong_total: float,
    ) -> tuple[float, FloatArray, FloatArray]:
        scale, x, log_sig, sig = self._terms(alpha, beta)
        # sum(p * right + (1 - p) * wrong) = sum(right) - (1 - p) . (x + log(K - 1))
        q = float(log_sig.sum()) - float(p_wrong @ x) - self.log_others * p_wrong_total
        q += self._prior_terms(alpha, beta)
        slope = np.subtract(p_given, sig, out=sig)  # p - sigmoid(x), the sig buffer reused
        grad_b = _sums(self.task, slope * x, self.n_tasks)
        slope *= scale
        grad_a = _sums(self.worker, slope, self.n_workers)
        grad_a -= alpha - self.alpha_mean
        grad_b -= beta - self.beta_mean
        return q, grad_a, grad_b

    def negative_objective(
        self, proba: FloatArray
    ) -> Callable[[FloatArray], tuple[float, FloatArray]]:
        """``x = [alpha, beta] -> (-objective, -gradient)`` under fixed posteriors, for scipy."""
        p_given = np.ascontiguousarray(proba[self.task, self.label])
        p_wrong = 1.0 - p_given
        p_wrong_total = float(p_wrong.sum())
        n_workers = self.n_workers
        grad = np.empty(n_workers + self.n_tasks)

        def negative(params: FloatArray) -> tuple[float, FloatArray]:
            a, b = params[:n_workers], params[n_workers:]
            q, grad_a, grad_b = self._objective_and_gradient(a, b, p_given, p_wrong, p_wrong_total)
            np.negative(grad_a, out=grad[:n_workers])
            np.negative(grad_b, out=grad[n_workers:])
            return -q, grad.copy()

        return negative
