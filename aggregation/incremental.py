"""Toloka's aggregation by skill kept incrementally, for dynamic overlap.

A voter right with probability ``q`` among ``K`` options adds ``log((K - 1) q / (1 - q))``
to the score of the value it chose; with a uniform prior the posterior is
``softmax(scores)`` over the options, which equals Toloka's
``P(z) ∝ Π_i (q_i if a_i = z else (1 - q_i) / (K - 1))`` (see ``skill_weighted``). Scores
add up, so a task keeps its summed scores and each new answer costs one addition.
``q`` of a labeler is Toloka's smoothed share ``(0.5 + right) / (1 + answered)`` of their
control tasks; a voter no better than chance (``q <= 1/K``) weighs nothing, so a model
wrong on every control task moves no confidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

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


def preliminary_scores(
    baseline_solutions: list | None,
    model_answer: str | None,
    *,
    model_weight_: float,
    values: list[str],
) -> dict[str, float]:
    """The weights of a task's preliminary answers: each baseline solution counts as a voter
    right with probability ``confidence_weight``; the pool model's answer with its weight."""
    scores: dict[str, float] = {}
    for solution in baseline_solutions or []:
        value = baseline_value(solution)
        if value in values:
            weight = answer_weight(solution.get("confidence_weight", 1.0), len(values))
            scores[value] = scores.get(value, 0.0) + weight
    if model_answer in values and model_weight_ > 0:
        scores[model_answer] = scores.get(model_answer, 0.0) + model_weight_
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
