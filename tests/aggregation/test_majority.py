from __future__ import annotations

import pandas as pd
import pytest

from aggregation import MajorityVote, Wawa, simulate_crowd
from tests.aggregation.conftest import answers


def test_unanimous_task_gets_confidence_one():
    df = answers([("t", "a", "cat"), ("t", "b", "cat"), ("t", "c", "cat")])
    mv = MajorityVote().fit(df)
    assert mv.labels_["t"] == "cat"
    assert mv.confidence_["t"] == 1.0


def test_confidence_is_share_of_winning_label():
    df = answers([("t", "a", "cat"), ("t", "b", "cat"), ("t", "c", "dog"), ("t", "d", "bird")])
    mv = MajorityVote().fit(df)
    assert mv.labels_["t"] == "cat"
    assert mv.confidence_["t"] == pytest.approx(0.5)
    assert mv.probas_.loc["t"].to_dict() == {"bird": 0.25, "cat": 0.5, "dog": 0.25}


@pytest.mark.parametrize("order", [["dog", "cat"], ["cat", "dog"]])
def test_tie_goes_to_label_that_sorts_first_whatever_the_row_order(order):
    df = answers([("t", "a", order[0]), ("t", "b", order[1]), ("u", "a", "dog")])
    assert MajorityVote().fit_predict(df).to_dict() == {"t": "cat", "u": "dog"}


def test_known_answers_override_the_vote():
    df = answers([("t", "a", "cat"), ("t", "b", "cat")])
    mv = MajorityVote().fit(df, known=pd.Series({"t": "dog"}))
    assert mv.labels_["t"] == "dog" and mv.confidence_["t"] == 1.0


def test_worker_accuracy_is_agreement_with_majority():
    df = answers([("t", "a", "x"), ("t", "b", "x"), ("t", "c", "y"), ("u", "c", "x")])
    acc = MajorityVote().fit(df).worker_accuracy_
    assert acc.to_dict() == {"a": 1.0, "b": 1.0, "c": 0.5}


def test_wawa_outvotes_two_spammers_with_one_reliable_worker():
    # Workers a, b, c agree on tasks 1-4, so they get high skill; s1, s2 mostly disagree.
    rows = [(f"t{i}", w, "x") for i in range(1, 5) for w in "abc"]
    rows += [("t1", "s1", "y"), ("t2", "s1", "y"), ("t3", "s2", "y"), ("t4", "s2", "y")]
    rows += [("q", "a", "x"), ("q", "s1", "y"), ("q", "s2", "y")]
    df = answers(rows)
    assert MajorityVote().fit_predict(df)["q"] == "y"
    wawa = Wawa().fit(df)
    assert wawa.labels_["q"] == "x"
    # a agrees with the majority on 4 of 5 answers (not on q), s1 on 1 of 3 (only on q)
    assert wawa.skills_["a"] == pytest.approx(0.8) and wawa.skills_["s1"] == pytest.approx(1 / 3)
    assert wawa.confidence_["q"] == pytest.approx(0.8 / (0.8 + 2 / 3))


def test_wawa_beats_majority_vote_with_spammers():
    crowd = simulate_crowd(600, 30, n_labels=3, overlap=5, spammers=0.4, seed=3)
    truth = crowd.truth
    mv = (MajorityVote().fit_predict(crowd.answers) == truth).mean()
    wawa = (Wawa().fit_predict(crowd.answers) == truth).mean()
    assert wawa > mv + 0.02


def test_empty_table_gives_empty_results():
    mv = MajorityVote().fit(answers([]))
    assert mv.labels_.empty and mv.result_frame().empty
