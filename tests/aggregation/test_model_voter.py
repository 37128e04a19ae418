"""The pool's model as a voter with a whole confusion matrix: what its answer says of each
class is learned like a person's, so a class it confuses gets less confidence than one it
never gets wrong, and the reported confidence matches how often it is right."""

from __future__ import annotations

import random

import pytest

from aggregation.incremental import ModelVoter, answer_weight, combined, confidence, posterior

VALUES = ["cat", "dog", "fox"]
# the model's answer given the truth: always right on cats and foxes, says "cat" for half the dogs
BEHAVIOUR = {"cat": {"cat": 1.0}, "dog": {"cat": 0.5, "dog": 0.5}, "fox": {"fox": 1.0}}


def _answer(truth: str, rng: random.Random) -> str:
    draw, total = rng.random(), 0.0
    for answer, p in BEHAVIOUR[truth].items():
        total += p
        if draw < total:
            return answer
    return truth


def _learned(n: int, rng: random.Random) -> ModelVoter:
    counts: dict[str, dict[str, int]] = {}
    right = 0
    for _ in range(n):
        truth = rng.choice(VALUES)
        answer = _answer(truth, rng)
        counts.setdefault(truth, {}).setdefault(answer, 0)
        counts[truth][answer] += 1
        right += answer == truth
    voter = ModelVoter.build(
        values=VALUES, control_answers=n, control_right=right, confusion=counts
    )
    assert voter is not None
    return voter


def test_without_counts_it_is_the_one_coin_weight_of_its_control_accuracy():
    voter = ModelVoter.build(values=VALUES, control_answers=10, control_right=8, confusion=None)
    assert voter.scores("dog") == {"dog": pytest.approx(answer_weight(voter.q, 3))}


def test_an_answer_the_model_gives_for_two_classes_is_weaker_than_one_it_never_confuses():
    voter = _learned(3000, random.Random(1))
    says_cat = posterior(combined(None, voter.scores("cat")), VALUES)
    says_dog = posterior(combined(None, voter.scores("dog")), VALUES)
    # "cat" comes from every cat and half the dogs: P(cat | it says cat) = 1 / 1.5
    assert abs(says_cat["cat"] - 2 / 3) < 0.03
    assert abs(says_cat["dog"] - 1 / 3) < 0.03
    assert says_dog["dog"] > 0.97  # only dogs make it say "dog"


def test_its_confidence_matches_how_often_it_is_right_on_new_tasks():
    rng = random.Random(2)
    voter = _learned(3000, rng)
    by_answer: dict[str, list[bool]] = {}
    reported: dict[str, float] = {}
    for _ in range(6000):
        truth = rng.choice(VALUES)
        answer = _answer(truth, rng)
        probabilities = posterior(combined(None, voter.scores(answer)), VALUES)
        guess = max(probabilities, key=probabilities.get)
        reported[answer] = confidence(combined(None, voter.scores(answer)), VALUES)
        by_answer.setdefault(answer, []).append(guess == truth)
    for answer, hits in by_answer.items():
        assert abs(sum(hits) / len(hits) - reported[answer]) < 0.03, answer


def test_a_model_no_better_than_chance_on_control_tasks_has_no_say():
    assert (
        ModelVoter.build(values=VALUES, control_answers=9, control_right=0, confusion=None) is None
    )
    assert ModelVoter.build(values=VALUES, control_answers=0, control_right=0, confusion={}) is None
