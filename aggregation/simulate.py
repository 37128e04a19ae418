"""Simulated crowds with known truth, for tests, benchmarks and demos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aggregation.matrix import IntArray

HONEST, SPAMMER, ADVERSARY = "honest", "spammer", "adversary"


@dataclass(frozen=True, eq=False)
class Crowd:
    """A simulated labeling run.

    Attributes:
        answers: ``task, worker, label`` DataFrame, one row per answer.
        truth: Task -> true label.
        kinds: Worker -> ``honest``, ``spammer`` or ``adversary``.
        accuracy: Worker -> probability of answering the true label.
    """

    answers: pd.DataFrame
    truth: pd.Series
    kinds: pd.Series
    accuracy: pd.Series


def _distinct_workers(
    rng: np.random.Generator, n_tasks: int, n_workers: int, overlap: int
) -> IntArray:
    """``(n_tasks, overlap)`` worker codes, distinct within each row, uniform at random."""
    if n_workers < 4 * overlap:
        return rng.random((n_tasks, n_workers)).argsort(axis=1)[:, :overlap].astype(np.int64)
    picks = rng.integers(0, n_workers, size=(n_tasks, overlap))
    while True:
        ordered = np.sort(picks, axis=1)
        bad = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if not bad.any():
            return picks
        picks[bad] = rng.integers(0, n_workers, size=(int(bad.sum()), overlap))


def simulate_crowd(
    n_tasks: int,
    n_workers: int,
    n_labels: int = 2,
    overlap: int = 3,
    accuracy: tuple[float, float] = (0.6, 0.95),
    spammers: float = 0.0,
    adversaries: float = 0.0,
    seed: int = 0,
) -> Crowd:
    """Simulates a crowd labeling tasks with ``overlap`` distinct workers each.

    Honest workers answer the true label with an accuracy drawn uniformly from ``accuracy``
    and otherwise a uniformly random other label. Spammers answer uniformly at random.
    Adversaries answer the "next" label (``(true + 1) mod n_labels``) with probability 0.8 and
    the true label otherwise, a consistent confusion that majority vote cannot see through.
    True labels are uniform. Labels are ``"c0"``, ``"c1"``, ...; tasks ``"t0"``, ...; workers
    ``"w0"``, ....

    Args:
        n_tasks: Number of tasks.
        n_workers: Number of workers (at least ``overlap``).
        n_labels: Number of classes (at least 2).
        overlap: Answers per task.
        accuracy: Range of honest workers' accuracy.
        spammers: Share of workers who are spammers.
        adversaries: Share of workers who are adversaries.
        seed: Seed of ``numpy.random.default_rng``.

    Returns:
        The answers, the truth and the workers' kinds and accuracies.
    """
    if n_workers < overlap or n_labels < 2:
        raise ValueError("need n_workers >= overlap and n_labels >= 2")
    rng = np.random.default_rng(seed)
    n_spam, n_adv = round(spammers * n_workers), round(adversaries * n_workers)
    n_honest = n_workers - n_spam - n_adv
    kinds = np.array([SPAMMER] * n_spam + [ADVERSARY] * n_adv + [HONEST] * n_honest)
    rng.shuffle(kinds)
    acc = rng.uniform(accuracy[0], accuracy[1], n_workers)
    acc[kinds == SPAMMER] = 1.0 / n_labels
    acc[kinds == ADVERSARY] = 0.2

    truth = rng.integers(0, n_labels, n_tasks)
    task = np.repeat(np.arange(n_tasks), overlap)
    worker = _distinct_workers(rng, n_tasks, n_workers, overlap).ravel()
    true = truth[task]
    right = rng.random(len(task)) < acc[worker]
    other = (true + rng.integers(1, n_labels, len(task))) % n_labels
    label = np.where(right, true, other)
    spam = kinds[worker] == SPAMMER
    label[spam] = rng.integers(0, n_labels, int(spam.sum()))
    adv = (kinds[worker] == ADVERSARY) & ~right
    label[adv] = (true[adv] + 1) % n_labels

    task_names = np.char.add("t", np.arange(n_tasks).astype(str)).astype(object)
    worker_names = np.char.add("w", np.arange(n_workers).astype(str)).astype(object)
    label_names = np.char.add("c", np.arange(n_labels).astype(str)).astype(object)
    answers = pd.DataFrame(
        {"task": task_names[task], "worker": worker_names[worker], "label": label_names[label]}
    )
    workers = pd.Index(worker_names, name="worker")
    return Crowd(
        answers=answers,
        truth=pd.Series(label_names[truth], index=pd.Index(task_names, name="task"), name="label"),
        kinds=pd.Series(kinds, index=workers, name="kind"),
        accuracy=pd.Series(acc, index=workers, name="accuracy"),
    )
