"""Toloka's aggregation by skill for one task (what ``aggregate_solutions_by_task`` and
dynamic overlap use): each answer is weighted by its labeler's skill.

Model (Toloka's "aggregation by skill"): labeler ``i`` with skill ``s_i`` (0-100) answers
right with probability ``q_i = s_i / 100`` and otherwise picks one of the other ``Y - 1``
labels uniformly. With a uniform prior, ``P(z) ∝ Π_i (q_i if a_i = z else (1 - q_i)/(Y - 1))``
and the confidence of ``z`` is ``P(z) / Σ_x P(x)``. Toloka's example: skills 70 and 90 both
answer OK among 3 labels → 97.7 %. A labeler without a skill value counts as ``q = 1/Y``
(no information). ``q`` is kept inside ``[1e-6, 1 - 1e-6]`` so two sure labelers who disagree
still give a finite answer.

Tie rule: among labels with the same posterior, the one listed first in ``labels`` wins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EPSILON = 1e-6


def skill_weighted(
    answers: Sequence[tuple[str, float | None]], labels: Sequence[str]
) -> tuple[str, float]:
    """``answers``: ``(label, skill 0-100 or None)`` per labeler → (label, confidence)."""
    if not answers:
        raise ValueError("no answers to aggregate")
    options = list(dict.fromkeys([*labels, *(label for label, _ in answers)]))
    y = len(options)
    if y == 1:
        return options[0], 1.0
    logs = dict.fromkeys(options, 0.0)
    for given, skill in answers:
        q = 1.0 / y if skill is None else min(max(float(skill) / 100.0, EPSILON), 1 - EPSILON)
        for z in options:
            logs[z] += math.log(q if given == z else (1.0 - q) / (y - 1))
    top = max(logs.values())
    weights = {z: math.exp(v - top) for z, v in logs.items()}
    best = max(options, key=lambda z: (weights[z], -options.index(z)))
    return best, weights[best] / sum(weights.values())
