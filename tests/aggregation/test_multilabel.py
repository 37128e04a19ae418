"""One binary model per option: per-option Dawid-Skene recovers a simulated checkbox crowd."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aggregation.multilabel import (
    aggregate_multilabel,
    binarize,
    fit_multilabel,
    simulate_multilabel_crowd,
)

OPTIONS = ["cat", "dog", "bird", "fish"]


def _option_accuracy(result, truth: pd.Series) -> dict[str, float]:
    labels = result.labels().reindex(truth.index)
    return {
        o: float(
            np.mean([(o in got) == (o in want) for got, want in zip(labels, truth, strict=True)])
        )
        for o in OPTIONS
    }


def test_binarize_makes_yes_no_per_option():
    answers = pd.DataFrame(
        {"task": ["t", "t", "u"], "worker": ["x", "y", "x"],
         "label": ['["cat","dog"]', "[]", '["dog"]']}
    )  # fmt: skip
    assert binarize(answers, "cat")["label"].tolist() == ["yes", "no", "no"]
    assert binarize(answers, "dog")["label"].tolist() == ["yes", "no", "yes"]


def test_per_option_dawid_skene_recovers_the_truth_of_a_simulated_crowd():
    answers, truth = simulate_multilabel_crowd(
        400, 30, OPTIONS, overlap=7, accuracy=(0.7, 0.95), spammers=0.25, seed=3
    )
    ds = fit_multilabel(answers, OPTIONS, "ds")
    mv = fit_multilabel(answers, OPTIONS, "mv")
    ds_acc, mv_acc = _option_accuracy(ds, truth), _option_accuracy(mv, truth)
    assert min(ds_acc.values()) >= 0.9, ds_acc
    # spammers tick at random: DS learns to discount them, majority vote cannot
    assert np.mean(list(ds_acc.values())) > np.mean(list(mv_acc.values())) + 0.05
    exact = np.mean(
        [set(a) == set(b) for a, b in zip(ds.labels().reindex(truth.index), truth, strict=True)]
    )
    assert exact >= 0.7
    # each option's own confidence: the options DS is surer about are right more often
    proba = ds.proba.reindex(truth.index)
    sure = proba.where((proba > 0.95) | (proba < 0.05))
    hits = [
        (sure.loc[t, o] >= 0.5) == (o in truth[t])
        for t in truth.index for o in OPTIONS if not np.isnan(sure.loc[t, o])
    ]  # fmt: skip
    assert len(hits) > 0.5 * len(truth) * len(OPTIONS)
    assert np.mean(hits) > np.mean(list(ds_acc.values())) + 0.02


def test_known_control_sets_fix_their_tasks_and_frame_has_a_column_per_option():
    answers, truth = simulate_multilabel_crowd(60, 10, OPTIONS, overlap=3, seed=1)
    known = truth.iloc[:10]
    frame = aggregate_multilabel(answers, OPTIONS, "ds", known=known)
    assert list(frame.columns) == ["task", "labels", "confidence", *OPTIONS]
    by_task = frame.set_index("task")
    for task, values in known.items():
        assert by_task.loc[task, "labels"] == values
        assert by_task.loc[task, "confidence"] > 0.99
    assert ((frame[OPTIONS] >= 0) & (frame[OPTIONS] <= 1)).all().all()
