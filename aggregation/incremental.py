"""Toloka's aggregation by skill kept incrementally, for dynamic overlap.

A voter right with probability ``q`` among ``K`` options adds ``log((K - 1) q / (1 - q))``
to the score of the value it chose; with a uniform prior the posterior is
``softmax(scores)`` over the options, which equals Toloka's
``P(z) ∝ Π_i (q_i if a_i = z else (1 - q_i) / (K - 1))`` (see ``skill_weighted``). Scores
add up, so a task keeps its summed scores and each new answer costs one addition.
``q`` of a labeler is Toloka's smoothed share ``(0.5 + right) / (1 + answered)`` of their
control tasks; a voter no better than chance (``q <= 1/K``) weighs nothing, so a model
wrong on every control task moves no confidence.

A model is a voter with a whole confusion matrix (:class:`ModelVoter`), as a person is in
Dawid-Skene: its answer ``a`` adds ``log P(a | z)`` to the score of every option ``z``, from
its counts on control tasks and on tasks the people made confident, smoothed towards its
one-coin accuracy (with few counts it is exactly the one-coin weight above).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SMOOTHING = 0.5  # Toloka's K in q = (K + right) / (2K + answered)
MAX_ACCURACY = 0.99  # no single voter is ever certain


def accuracy(right: int, answered: int) -> float:
    """Toloka's smoothed share of right answers: ``(0.5 + right) / (1 + answered)``."""
    return (SMOOTHING + right) / (2 * SMOOTHING + answered)


def answer_weight(q: float, n_options: int) -> float:
    """The log-odds weight of a voter right with probability ``q`` among ``n_options``;
    0 for a voter no better than chance (or an unknown one)."""
    if n_options < 2 or q is None:
        return 0.0
    q = min(max(float(q), 0.0), MAX_ACCURACY)
    if q <= 1.0 / n_options:
        return 0.0
    return math.log((n_options - 1) * q / (1 - q))


def posterior(scores: Mapping[str, float], values: list[str]) -> dict[str, float]:
    """Each option's probability given the summed weights (uniform prior)."""
    if not values:
        return {}
    top = max([0.0, *(scores.get(v, 0.0) for v in values)])
    exp = {v: math.exp(scores.get(v, 0.0) - top) for v in values}
    total = sum(exp.values())
    return {v: e / total for v, e in exp.items()}


def confidence(scores: Mapping[str, float], values: list[str]) -> float:
    """The aggregated answer's confidence: the largest posterior probability."""
    return max(posterior(scores, values).values(), default=0.0)


PRIOR_STRENGTH = 4.0  # pseudo-counts of the one-coin prior in each row of a model's matrix


@dataclass(frozen=True, slots=True)
class ModelVoter:
    """A model's answer as evidence: ``log P(answer | truth)`` per option, from its confusion
    counts ``{truth: {answer: n}}`` smoothed towards its one-coin accuracy ``q``."""

    values: tuple[str, ...]
    q: float
    counts: Mapping[str, Mapping[str, float]]

    @classmethod
    def build(
        cls,
        *,
        values: list[str],
        control_answers: int,
        control_right: int,
        confusion: Mapping | None,
    ) -> ModelVoter | None:
        """None (no say) before it answered a control task, or when it is no better than
        chance on them: a model wrong on every control task closes nothing."""
        if len(values) < 2 or not control_answers:
            return None
        q = min(accuracy(control_right, control_answers), MAX_ACCURACY)
        if q <= 1.0 / len(values):
            return None
        counts = confusion if isinstance(confusion, Mapping) else {}
        return cls(tuple(values), q, counts)

    def likelihood(self, answer: str, truth: str) -> float:
        """``P(answer | truth)``: the row's counts plus ``PRIOR_STRENGTH`` one-coin ones."""
        k = len(self.values)
        prior = self.q if answer == truth else (1 - self.q) / (k - 1)
        row = self.counts.get(truth) or {}
        seen = sum(float(n) for value, n in row.items() if value in self.values)
        return (float(row.get(answer, 0)) + PRIOR_STRENGTH * prior) / (seen + PRIOR_STRENGTH)

    def scores(self, answer: str) -> dict[str, float]:
        """What the model's ``answer`` adds to each option's score (log-likelihoods, shifted
        so that they compare with a person's weight on the chosen value alone)."""
        if answer not in self.values:
            return {}
        logs = {z: math.log(self.likelihood(answer, z)) for z in self.values}
        floor = min(logs.values())
        return {z: v - floor for z, v in logs.items() if v > floor}


def preliminary_scores(
    baseline_solutions: list | None,
    model_answer: str | None,
    *,
    model: ModelVoter | None,
    values: list[str],
) -> dict[str, float]:
    """The weights of a task's preliminary answers: each baseline solution counts as a voter
    right with probability ``confidence_weight``; the pool model's answer by its matrix."""
    scores: dict[str, float] = {}
    for solution in baseline_solutions or []:
        value = baseline_value(solution)
        if value in values:
            weight = answer_weight(solution.get("confidence_weight", 1.0), len(values))
            scores[value] = scores.get(value, 0.0) + weight
    if model is not None and model_answer is not None:
        for value, score in model.scores(model_answer).items():
            scores[value] = scores.get(value, 0.0) + score
    return scores


def baseline_value(solution: Mapping) -> str | None:
    """The answer of one baseline solution (``output_values.result``)."""
    output = solution.get("output_values") if isinstance(solution, Mapping) else None
    if not isinstance(output, Mapping) or output.get("result") is None:
        return None
    return str(output["result"])


def combined(votes: Mapping[str, float] | None, prior: Mapping[str, float]) -> dict[str, float]:
    out = dict(prior)
    for value, weight in (votes or {}).items():
        out[value] = out.get(value, 0.0) + float(weight)
    return out


def overlap_after(
    *, submitted: int, overlap: int, confidence: float, min_confidence: float, max_overlap: int
) -> int:
    """Dynamic overlap's rule: a task whose every slot is answered (``submitted`` reached
    ``overlap``, so no suite is still out on it) and whose confidence is below
    ``min_confidence`` gets one more slot, up to ``max_overlap``; otherwise it keeps its
    overlap."""
    if submitted >= overlap and confidence < min_confidence and overlap < max_overlap:
        return overlap + 1
    return overlap
