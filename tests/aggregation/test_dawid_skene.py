from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aggregation import GLAD, DawidSkene, MajorityVote, OneCoinDawidSkene, simulate_crowd
from tests.aggregation.conftest import answers

# Two workers, labels a < b. Worker 1 is informative, worker 2 always answers "a".
TWO_WORKERS = answers(
    [
        ("t1", "w1", "a"), ("t1", "w2", "a"),
        ("t2", "w1", "a"), ("t2", "w2", "a"),
        ("t3", "w1", "b"), ("t3", "w2", "a"),
        ("t4", "w1", "b"), ("t4", "w2", "a"),
    ]
)  # fmt: skip


def accuracy(labels: pd.Series, truth: pd.Series) -> float:
    return float((labels == truth.reindex(labels.index)).mean())


def test_two_workers_who_disagree_stay_at_one_half_and_the_tie_goes_to_the_first_label():
    # From majority vote, priors (.75, .25), e1[b|a] = 1/3, e1[b|b] = 1, e2[a|.] = 1, so the
    # disagreements t3, t4 get .75 * 1/3 vs .25 * 1: a fixed point at exactly one half.
    ds = DawidSkene(tol=-np.inf, n_iter=5).fit(TWO_WORKERS)
    assert ds.probas_.loc["t3"].tolist() == pytest.approx([0.5, 0.5])
    assert ds.labels_.to_dict() == {"t1": "a", "t2": "a", "t3": "a", "t4": "a"}
    assert ds.confidence_["t1"] == pytest.approx(1.0)
    assert ds.priors_.tolist() == pytest.approx([0.75, 0.25])
    assert ds.errors_.loc[("w1", "b"), "a"] == pytest.approx(1 / 3)
    assert ds.errors_.loc[("w2", "a")].tolist() == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("n_iter", [1, 2, 3, 6])
def test_two_workers_with_t3_known_halve_the_doubt_on_t4_each_iteration(n_iter):
    # With P(t4 = a) = q: priors ((2+q)/4, (2-q)/4), e1[b|a] = q/(2+q), e1[b|b] = 1, worker 2
    # says "a" whatever the truth. The E-step gives t4 odds q/4 : (2-q)/4, i.e. q' = q/2,
    # starting from the majority-vote q = 1/2.
    known = pd.Series({"t3": "b"})
    ds = DawidSkene(n_iter=n_iter, tol=-np.inf).fit(TWO_WORKERS, known=known)
    q = 0.5 ** (n_iter + 1)
    assert ds.probas_.loc["t4", "a"] == pytest.approx(q, abs=1e-8)
    assert ds.labels_["t4"] == "b"
    assert ds.probas_.loc["t3"].tolist() == [0.0, 1.0]
    assert ds.errors_.loc[("w1", "b"), "a"] == pytest.approx(q / (2 + q), abs=1e-8)
    assert ds.n_iter_ == n_iter


def test_ds_stops_at_tol_and_never_past_n_iter():
    crowd = simulate_crowd(300, 20, n_labels=3, overlap=3, spammers=0.3, seed=5)
    capped = DawidSkene(n_iter=3, tol=-np.inf).fit(crowd.answers)
    assert capped.n_iter_ == 3
    free = DawidSkene(n_iter=500, tol=1e-3).fit(crowd.answers)
    gains = np.diff(free.loss_history_)
    assert free.n_iter_ < 500 and gains[-1] < 1e-3 and (gains[:-1] >= 1e-3).all()


def test_ds_reports_progress_per_iteration():
    calls: list[tuple[float, str]] = []
    crowd = simulate_crowd(100, 10, overlap=3, seed=1)
    ds = DawidSkene(n_iter=4, tol=-np.inf).fit(
        crowd.answers, on_progress=lambda f, m: calls.append((f, m))
    )
    assert [f for f, _ in calls] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert calls[0][1].startswith("EM iteration 1/4") and ds.n_iter_ == 4


def test_ds_beats_majority_vote_with_spammers_and_adversaries():
    crowd = simulate_crowd(600, 30, n_labels=3, overlap=5, spammers=0.3, adversaries=0.2, seed=0)
    mv = accuracy(MajorityVote().fit_predict(crowd.answers), crowd.truth)
    ds = DawidSkene().fit(crowd.answers)
    assert accuracy(ds.labels_, crowd.truth) > mv + 0.15  # measured: 0.92 vs 0.69
    kinds = crowd.kinds.reindex(ds.worker_accuracy_.index)
    assert (
        ds.worker_accuracy_[kinds == "honest"].min() > ds.worker_accuracy_[kinds != "honest"].max()
    )
    # the adversaries' confusion matrices learn that they answer the "next" label
    adversary = kinds.index[kinds == "adversary"][0]
    assert ds.errors_.loc[(adversary, "c1"), "c0"] > 0.6


def test_one_coin_ds_and_glad_beat_majority_vote_with_spammers():
    crowd = simulate_crowd(400, 30, n_labels=3, overlap=3, spammers=0.4, seed=2)
    mv = accuracy(MajorityVote().fit_predict(crowd.answers), crowd.truth)
    one_coin = OneCoinDawidSkene().fit(crowd.answers)
    glad = GLAD().fit(crowd.answers)
    assert accuracy(one_coin.labels_, crowd.truth) > mv + 0.04
    assert accuracy(glad.labels_, crowd.truth) > mv + 0.04
    spam = crowd.kinds.reindex(one_coin.skills_.index) == "spammer"
    assert one_coin.skills_[spam].mean() < 0.45 < one_coin.skills_[~spam].mean()
    assert glad.alphas_[spam.to_numpy()].mean() < glad.alphas_[~spam.to_numpy()].mean()


def test_known_answers_sharpen_ds():
    """Half the crowd adversarial: DS alone may follow the wrong majority; 10% gold fixes it.

    Measured over these 8 crowds: accuracy on the non-control tasks 0.62 -> 0.98 (MV 0.51);
    mean error of estimated worker accuracy 0.23 -> 0.03.
    """
    plain, gold, errors_plain, errors_gold = [], [], [], []
    for seed in range(8):
        crowd = simulate_crowd(
            500, 20, n_labels=3, overlap=5, adversaries=0.5, spammers=0.1, seed=seed
        )
        rng = np.random.default_rng(seed)
        control = rng.choice(crowd.truth.index, 50, replace=False)
        rest = crowd.truth.index.difference(control)
        without = DawidSkene().fit(crowd.answers)
        with_known = DawidSkene().fit(crowd.answers, known=crowd.truth.loc[control])
        plain.append(accuracy(without.labels_.loc[rest], crowd.truth))
        gold.append(accuracy(with_known.labels_.loc[rest], crowd.truth))
        assert (with_known.labels_.loc[control] == crowd.truth.loc[control]).all()
        for model, errors in ((without, errors_plain), (with_known, errors_gold)):
            true_acc = crowd.accuracy.reindex(model.worker_accuracy_.index)
            errors.append(float((model.worker_accuracy_ - true_acc).abs().mean()))
    assert min(gold) > 0.95
    assert min(plain) < 0.5  # at least one crowd where DS alone follows the adversaries
    assert np.mean(gold) > np.mean(plain) + 0.2
    assert np.mean(errors_gold) < np.mean(errors_plain) / 2


def test_probas_are_distributions_and_confidence_is_the_chosen_posterior():
    crowd = simulate_crowd(200, 15, n_labels=4, overlap=3, spammers=0.2, seed=4)
    for model in (DawidSkene(), OneCoinDawidSkene(), GLAD()):
        model.fit(crowd.answers)
        probas = model.probas_
        assert np.allclose(probas.sum(axis=1), 1.0) and (probas.to_numpy() >= 0).all()
        assert (model.labels_ == probas.idxmax(axis=1)).all()
        assert np.allclose(model.confidence_, probas.max(axis=1))


def test_single_label_and_empty_tables():
    df = answers([("t", "a", "x"), ("u", "b", "x")])
    for model in (DawidSkene(), OneCoinDawidSkene(), GLAD()):
        assert model.fit_predict(df).tolist() == ["x", "x"]
        assert model.confidence_.tolist() == pytest.approx([1.0, 1.0])
        assert model.fit(answers([])).labels_.empty


def test_known_label_nobody_gave_becomes_a_possible_label_only_for_answered_tasks():
    df = answers([("t", "a", "x"), ("t", "b", "x"), ("u", "a", "x")])
    ds = DawidSkene().fit(df, known=pd.Series({"t": "y", "elsewhere": "z"}))
    assert list(ds.probas_.columns) == ["x", "y"]  # no "z": its task has no answers
    assert ds.labels_["t"] == "y" and ds.confidence_["t"] == 1.0
