"""Several answers per task (checkboxes): one binary model per option.

An answer is a set of option values (a list, or its JSON text ``["cat","dog"]``). Each
option becomes a yes/no question ("is *cat* in the image?") answered by every labeler who
answered the task; any binary method of this package (Dawid-Skene, GLAD, ``auto`` with its
calibration, ...) aggregates it, so each option gets its own probability. The aggregated set
holds the options whose probability of "yes" is at least 0.5.

>>> import pandas as pd
>>> df = pd.DataFrame({"task": ["a"] * 3, "worker": ["x", "y", "z"],
...                    "label": ['["cat","dog"]', '["cat"]', '["cat","dog"]']})
>>> result = aggregate_multilabel(df, ["cat", "dog"], method="mv")
>>> result.loc[0, "labels"], float(result.loc[0, "cat"]), round(float(result.loc[0, "dog"]), 3)
(['cat', 'dog'], 1.0, 0.667)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pandas as pd

from aggregation.base import ProgressFn

YES, NO = "yes", "no"


def parse_set(value: Any) -> list[str] | None:
    """The values of a set given as a list or as the text of a JSON list; None otherwise."""
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v) for v in value]
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            return parsed
    return None


def encode_set(values: Sequence[str], options: Sequence[str]) -> str:
    """A set's canonical text: the chosen values in option order, as a compact JSON list."""
    chosen = set(values)
    return json.dumps(
        [o for o in options if o in chosen], ensure_ascii=False, separators=(",", ":")
    )


def binarize(answers: pd.DataFrame, option: str) -> pd.DataFrame:
    """``task, worker, label`` with ``label`` "yes" when the answer's set holds ``option``,
    "no" otherwise (answers that are not sets are dropped)."""
    sets = answers["label"].map(parse_set)
    keep = sets.notna()
    out = answers.loc[keep, ["task", "worker"]].copy()
    out["label"] = [YES if option in s else NO for s in sets[keep]]
    return out.reset_index(drop=True)


def _known_binary(known: pd.Series | None, option: str) -> pd.Series | None:
    if known is None or known.empty:
        return None
    sets = known.map(parse_set).dropna()
    return sets.map(lambda s: YES if option in s else NO).rename("label")


@dataclass
class MultilabelResult:
    """Per task: the aggregated set and each option's probability of being in it."""

    options: list[str]
    proba: pd.DataFrame  # task x option: P(option in the set)
    models: dict[str, Any] = field(default_factory=dict)  # option -> its fitted binary model

    def labels(self, threshold: float = 0.5) -> pd.Series:
        """Task -> the options at or above ``threshold``, in option order."""
        values = self.proba.to_numpy() >= threshold
        return pd.Series(
            [[o for o, hit in zip(self.options, row, strict=True) if hit] for row in values],
            index=self.proba.index,
            name="labels",
        )

    def set_confidence(self) -> pd.Series:
        """Task -> probability that the whole set is right (options taken as independent)."""
        p = self.proba.to_numpy()
        return pd.Series(
            np.prod(np.maximum(p, 1.0 - p), axis=1), index=self.proba.index, name="confidence"
        )

    def frame(self) -> pd.DataFrame:
        """``task, labels, confidence`` plus one column per option (its probability)."""
        out = pd.DataFrame({"task": self.proba.index})
        out["labels"] = self.labels().to_numpy()
        out["confidence"] = self.set_confidence().to_numpy()
        for option in self.options:
            out[option] = self.proba[option].to_numpy()
        return out

    def worker_accuracy(self) -> pd.DataFrame:
        """worker x option: each binary model's estimated accuracy of the worker."""
        return pd.DataFrame(
            {o: model.worker_accuracy_ for o, model in self.models.items()}
        ).reindex(columns=self.options)


def fit_multilabel(
    answers: pd.DataFrame,
    options: Sequence[str],
    method: str | Callable[[], Any] = "ds",
    *,
    known: pd.Series | None = None,
    on_progress: ProgressFn | None = None,
) -> MultilabelResult:
    """Fit one binary model per option on ``task, worker, label`` answers whose labels are
    sets; ``known`` (task -> set) fixes control tasks in every option's model."""
    from aggregation.registry import get_method

    factory = get_method(method) if isinstance(method, str) else method
    options = list(options)
    tasks = pd.Index(pd.unique(answers["task"]), name="task")
    proba = pd.DataFrame(0.0, index=tasks, columns=options)
    models: dict[str, Any] = {}
    for i, option in enumerate(options):
        data = binarize(answers, option)
        if data.empty:
            continue

        def step(fraction: float, message: str, i: int = i, option: str = option) -> None:
            if on_progress is not None:
                on_progress((i + fraction) / len(options), f"{option}: {message}")

        model = factory()
        known_o = _known_binary(known, option)
        if known_o is not None:
            known_o = known_o[known_o.index.isin(data["task"])]
        model.fit(data, known=known_o, on_progress=step)
        probas = model.probas_
        yes = probas[YES] if YES in probas.columns else pd.Series(0.0, index=probas.index)
        proba.loc[yes.index, option] = yes.to_numpy(dtype=float)
        models[option] = model
    if on_progress is not None:
        on_progress(1.0, "done")
    return MultilabelResult(options=options, proba=proba.clip(0.0, 1.0), models=models)


def aggregate_multilabel(
    answers: pd.DataFrame,
    options: Sequence[str],
    method: str = "ds",
    *,
    known: pd.Series | None = None,
) -> pd.DataFrame:
    """``task, labels, confidence`` and one probability column per option (see
    :meth:`MultilabelResult.frame`)."""
    return fit_multilabel(answers, options, method, known=known).frame()


def simulate_multilabel_crowd(
    n_tasks: int,
    n_workers: int,
    options: Sequence[str] = ("a", "b", "c"),
    overlap: int = 5,
    accuracy: tuple[float, float] = (0.7, 0.95),
    spammers: float = 0.0,
    prevalence: float = 0.35,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.Series]:
    """A simulated checkbox crowd: ``(answers, truth)``.

    Each option is in a task's true set with probability ``prevalence``. An honest worker
    gets each option right (ticked when in the set, left when not) with their accuracy, drawn
    uniformly from ``accuracy``; a spammer ticks each option with probability 1/2. Answers are
    the sets' JSON texts; ``truth`` maps task -> list of values.
    """
    rng = np.random.default_rng(seed)
    options = list(options)
    truth = rng.random((n_tasks, len(options))) < prevalence
    acc = rng.uniform(accuracy[0], accuracy[1], n_workers)
    spam = rng.random(n_workers) < spammers
    rows = []
    for t in range(n_tasks):
        for w in rng.choice(n_workers, size=overlap, replace=False):
            if spam[w]:
                ticked = rng.random(len(options)) < 0.5
            else:
                right = rng.random(len(options)) < acc[w]
                ticked = np.where(right, truth[t], ~truth[t])
            chosen = [o for o, hit in zip(options, ticked, strict=True) if hit]
            rows.append((f"t{t}", f"w{w}", encode_set(chosen, options)))
    answers = pd.DataFrame(rows, columns=["task", "worker", "label"])
    sets = [[o for o, hit in zip(options, row, strict=True) if hit] for row in truth]
    return answers, pd.Series(sets, index=[f"t{t}" for t in range(n_tasks)], name="labels")


def write_multilabel_tsv(
    rows: Iterable[tuple[str, str, dict[str, float]]],
    file: IO[str],
    options: Sequence[str],
    *,
    input_field: str = "image",
    output_field: str = "result",
) -> int:
    """Aggregated sets as TSV: ``INPUT:<f>``, ``OUTPUT:<f>`` (the set as a JSON list, e.g.
    ``["cat","dog"]``) and one ``CONFIDENCE:<value>`` column per option, in option order
    (the probability that the option is in the set). Returns the number of data rows."""
    from aggregation.tsv import format_confidence, spreadsheet_safe

    writer = csv.writer(file, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(
        [f"INPUT:{input_field}", f"OUTPUT:{output_field}", *(f"CONFIDENCE:{o}" for o in options)]
    )
    count = 0
    for task, labels, confidence in rows:
        values = parse_set(labels) if not isinstance(labels, list) else labels
        cells = [spreadsheet_safe(str(task)), encode_set(values or [], options)]
        cells += [format_confidence(float(confidence.get(o, 0.0))) for o in options]
        writer.writerow(cells)
        count += 1
    return count
