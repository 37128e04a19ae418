"""``auto`` and calibrated confidence: simulated crowds whose true accuracy is known."""

from __future__ import annotations

import numpy as np
import pytest

from aggregation import (
    Auto,
    BayesianDawidSkene,
    DawidSkene,
    PlattCalibrator,
    expected_calibration_error,
    get_method,
    reliability_bins,
    simulate_crowd,
)


def _split(crowd, share=0.1, seed=0):
    rng = np.random.default_rng(seed)
    tasks = crowd.truth.index.to_numpy()
    gold = rng.choice(tasks, size=round(share * len(tasks)), replace=False)
    return crowd.truth[gold], crowd.truth.drop(gold)


def _scored(model, scored):
    labels = model.labels_.reindex(scored.index)
    confidence = model.confidence_.reindex(scored.index).to_numpy()
    return confidence, (labels == scored).to_numpy()


def test_ece_is_zero_when_confidence_matches_accuracy_per_bin():
    confidence = np.array([0.75] * 4 + [1.0] * 2)
    correct = np.array([1, 1, 1, 0, 1, 1], dtype=float)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0.9, 0.9]), np.array([0.0, 0.0])) == 0.9
    assert expected_calibration_error(np.zeros(0), np.zeros(0)) == 0.0
    bins = reliability_bins(confidence, correct)
    assert [b["count"] for b in bins] == [4, 2] and bins[0]["accuracy"] == 0.75


def test_platt_learns_to_lower_an_overconfident_score_and_keeps_a_calibrated_one():
    rng = np.random.default_rng(0)
    overconfident = np.full(2000, 0.99)
    correct = rng.random(2000) < 0.7
    cal = PlattCalibrator(floor=0.5).fit(overconfident, correct)
    assert cal(np.array([0.99]))[0] == pytest.approx(correct.mean(), abs=0.01)
    p = rng.uniform(0.5, 1.0, 5000)
    fair = PlattCalibrator().fit(p, rng.random(5000) < p)
    assert np.abs(fair(p) - p).max() < 0.03


@pytest.fixture(scope="module")
def big_crowd():
    # heterogeneous honest workers plus spammers; 3 answers a task: many uncertain tasks
    return simulate_crowd(6000, 60, n_labels=3, overlap=3, accuracy=(0.55, 0.9), spammers=0.2,
                          seed=3)  # fmt: skip


def test_auto_confidence_is_within_3_points_of_observed_accuracy_per_bin(big_crowd):
    known, scored = _split(big_crowd, 0.1)
    model = Auto(methods=("ds", "bds", "one_coin_ds", "mv")).fit(big_crowd.answers, known=known)
    assert model.calibrated_
    confidence, correct = _scored(model, scored)
    for b in reliability_bins(confidence, correct):
        if b["count"] >= 300:
            # 0.03 of calibration error, plus two standard deviations of the binomial noise of
            # the observed accuracy of a bin of this many tasks (at most 2.9 points at 300)
            noise = 2 * np.sqrt(b["accuracy"] * (1 - b["accuracy"]) / b["count"])
            assert abs(b["confidence"] - b["accuracy"]) <= 0.03 + noise, b
    assert expected_calibration_error(confidence, correct) <= 0.03
    raw, raw_correct = _scored(DawidSkene().fit(big_crowd.answers, known=known), scored)
    assert expected_calibration_error(confidence, correct) < expected_calibration_error(
        raw, raw_correct
    )


def test_bayesian_ds_is_as_accurate_as_ds_and_calibrated_on_a_well_specified_crowd(big_crowd):
    known, scored = _split(big_crowd, 0.1)
    ds_conf, ds_ok = _scored(DawidSkene().fit(big_crowd.answers, known=known), scored)
    b_conf, b_ok = _scored(BayesianDawidSkene().fit(big_crowd.answers, known=known), scored)
    assert b_ok.mean() >= ds_ok.mean() - 0.005
    assert expected_calibration_error(b_conf, b_ok) <= 0.03


@pytest.mark.parametrize("seed", range(4))
def test_control_tasks_never_hurt(seed):
    crowd = simulate_crowd(800, 25, n_labels=3, overlap=3, accuracy=(0.5, 0.9), spammers=0.3,
                           adversaries=0.1 * (seed % 2), seed=seed)  # fmt: skip
    known, scored = _split(crowd, 0.1, seed)
    _, without = _scored(DawidSkene().fit(crowd.answers), scored)
    _, with_gold = _scored(DawidSkene().fit(crowd.answers, known=known), scored)
    _, auto = _scored(Auto().fit(crowd.answers, known=known), scored)
    noise = 0.01  # plain DS with clamped control tasks alone does not promise this (seed 2)
    assert auto.mean() >= without.mean() - noise
    assert auto.mean() >= with_gold.mean() - noise


def test_auto_without_control_tasks_is_bayesian_ds_and_uncalibrated():
    crowd = simulate_crowd(200, 12, overlap=3, seed=5)
    model = Auto().fit(crowd.answers)
    assert model.method_ == "bds" and not model.calibrated_
    expected = BayesianDawidSkene().fit(crowd.answers).posterior_
    assert np.allclose(model.posterior_, expected)
    assert get_method("auto") is Auto and get_method("bcc") is BayesianDawidSkene


def test_auto_leaves_majority_vote_when_half_the_crowd_is_adversarial():
    crowd = simulate_crowd(600, 20, n_labels=3, overlap=5, spammers=0.1, adversaries=0.5, seed=1)
    known, scored = _split(crowd, 0.1)
    model = Auto().fit(crowd.answers, known=known)
    assert model.method_ not in {"mv", "wawa"}
    assert set(model.scores_) >= {"ds", "bds", "one_coin_ds", "glad", "wawa", "mv", "mean"}
    _, auto = _scored(model, scored)
    _, mv = _scored(get_method("mv")().fit(crowd.answers, known=known), scored)
    assert auto.mean() > mv.mean() + 0.1
    head = model.confidence_.reindex(known.index)
    assert (head == 1.0).all() and (model.labels_.reindex(known.index) == known).all()


def test_importing_aggregation_loads_neither_pandas_nor_scipy():
    import subprocess
    import sys

    code = (
        "import sys, aggregation; "
        "print(sorted(m for m in ('pandas', 'scipy', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = "import sys; from aggregation import Auto, GLAD; print('scipy.optimize' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # GLAD imports its optimiser when it first fits


def test_quality_report_carries_choice_calibration_and_labeler_intervals(big_crowd):
    from aggregation import quality_report

    known, _ = _split(big_crowd, 0.1)
    model = Auto(methods=("ds", "bds", "mv")).fit(big_crowd.answers, known=known)
    report = quality_report(model)
    assert report["method_used"] == model.method_ and report["calibrated"]
    assert 0 <= report["heldout_ece"] <= 0.05 and report["known_count"] == len(known)
    assert sum(b["count"] for b in report["reliability"]) == len(known)
    assert set(report["scores"]) == {"ds", "bds", "mv"}
    spam = set(big_crowd.kinds[big_crowd.kinds == "spammer"].index)
    for w in report["workers"]:
        assert 0 <= w["low"] <= w["accuracy"] <= w["high"] <= 1
    worst = {w["worker"] for w in report["workers"][: len(spam)]}
    assert len(worst & spam) >= 0.8 * len(spam)  # spammers have the lowest lower bounds
    plain = quality_report(BayesianDawidSkene().fit(big_crowd.answers))
    assert not plain["calibrated"] and plain["heldout_ece"] is None


def test_auto_keeps_the_chosen_methods_own_posterior_beside_the_calibrated_one(big_crowd):
    known, scored = _split(big_crowd, 0.1)
    model = Auto(methods=("ds", "bds")).fit(big_crowd.answers, known=known)
    raw = model.uncalibrated_posterior_
    codes = model.matrix_.tasks.get_indexer(scored.index)
    top = model.label_codes_[codes]
    assert (raw[codes].argmax(axis=1) == top).all()
    expected = model.calibrator_(raw[codes, top])
    assert np.allclose(model.posterior_[codes, top], expected)
    assert raw[codes, top].mean() > model.posterior_[codes, top].mean()  # DS is overconfident
    plain = Auto().fit(big_crowd.answers)
    assert plain.uncalibrated_posterior_ is plain.posterior_


def test_the_benchmarks_control_set_limit_shrinks_as_the_control_set_grows():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.aggregation import control_noise_ece

    rng = np.random.default_rng(0)
    raw = rng.uniform(0.5, 1.0, 4000)
    correct = (rng.random(4000) < raw).astype(float)  # raw confidences exactly right
    few = control_noise_ece(raw, correct, 30, 2, seed=0)
    many = control_noise_ece(raw, correct, 1000, 2, seed=0)
    assert many < 0.03 < few
    assert np.isnan(control_noise_ece(raw, correct, 5, 2, seed=0))  # too few: auto won't map
