from __future__ import annotations

import io

import pandas as pd
import pytest

from aggregation import (
    GLAD,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    Wawa,
    aggregate,
    get_method,
    read_assignments_tsv,
    simulate_crowd,
    write_aggregated_tsv,
)
from aggregation.cli import aggregate_file


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("mv", MajorityVote),
        ("majority_vote", MajorityVote),
        ("ds", DawidSkene),
        ("Dawid-Skene", DawidSkene),
        ("one_coin_ds", OneCoinDawidSkene),
        ("glad", GLAD),
        ("wawa", Wawa),
    ],
)
def test_get_method_knows_names_and_aliases(name, cls):
    assert get_method(name) is cls


def test_get_method_lists_the_names_when_unknown():
    with pytest.raises(ValueError, match="mv, ds, one_coin_ds, glad, wawa"):
        get_method("bayes")


@pytest.mark.parametrize("method", ["mv", "ds", "one_coin_ds", "glad", "wawa"])
def test_aggregate_gives_one_row_per_task_with_confidence_in_unit_interval(method):
    crowd = simulate_crowd(120, 12, n_labels=3, overlap=3, spammers=0.2, seed=9)
    known = crowd.truth.iloc[:5]
    result = aggregate(crowd.answers, method=method, known=known)
    assert list(result.columns) == ["task", "label", "confidence"]
    assert result["task"].tolist() == list(pd.unique(crowd.answers["task"]))
    assert result["confidence"].between(0, 1).all()
    assert set(result["label"]) <= {"c0", "c1", "c2"}
    head = result.set_index("task").loc[known.index]
    assert (head["label"] == known).all() and (head["confidence"] == 1.0).all()


def test_aggregate_passes_parameters_to_the_method():
    crowd = simulate_crowd(100, 10, overlap=3, seed=2)
    calls = []
    aggregate(crowd.answers, "ds", n_iter=2, tol=-1.0, on_progress=lambda f, m: calls.append(f))
    assert calls == [0.5, 1.0, 1.0]
    with pytest.raises(TypeError):
        aggregate(crowd.answers, "mv", n_iter=2)


def _results_tsv(crowd, path, golden_every=10):
    truth = crowd.truth
    lines = ["INPUT:image\tOUTPUT:result\tGOLDEN:result\tASSIGNMENT:worker_id\tASSIGNMENT:status"]
    for i, (task, worker, label) in enumerate(crowd.answers.itertuples(index=False)):
        golden = truth[task] if int(task[1:]) % golden_every == 0 else ""
        lines.append(f"http://img/{task}.jpg\t{label}\t{golden}\t{worker}\tAPPROVED")
        if i % 5 == 4:
            lines.append("")  # Toloka's "separate assignments with empty row"
    path.write_text("\n".join(lines) + "\n")


def test_aggregate_file_writes_toloka_tsv_and_reports_progress(tmp_path):
    crowd = simulate_crowd(200, 15, n_labels=3, overlap=3, spammers=0.3, seed=4)
    source, target = tmp_path / "results.tsv", tmp_path / "aggregated.tsv"
    _results_tsv(crowd, source)
    progress: list[tuple[float, str]] = []
    summary = aggregate_file(
        source, target, method="ds", on_progress=lambda f, m: progress.append((f, m))
    )
    assert summary["answers"] == 600 and summary["tasks"] == 200 and summary["labels"] == 3
    assert summary["known"] == 20 and summary["method"] == "ds"
    assert 1 <= summary["iterations"] <= 100 and 0 < summary["mean_confidence"] <= 1
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum("EM iteration" in m for _, m in progress) == summary["iterations"]
    out = pd.read_csv(target, sep="\t", keep_default_na=False)
    assert list(out.columns) == ["INPUT:image", "OUTPUT:result", "CONFIDENCE:result"]
    assert len(out) == 200 and out["CONFIDENCE:result"].between(0, 1).all()
    truth = {f"http://img/{t}.jpg": label for t, label in crowd.truth.items()}
    golden = out[out["INPUT:image"].str.match(r"http://img/t\d*0\.jpg")]
    assert len(golden) == 20
    assert (golden["OUTPUT:result"] == golden["INPUT:image"].map(truth)).all()
    accuracy = (out["OUTPUT:result"] == out["INPUT:image"].map(truth)).mean()
    assert accuracy > 0.8


def test_aggregate_file_matches_in_memory_aggregate_and_rewrites_identically(tmp_path):
    crowd = simulate_crowd(30, 6, overlap=3, seed=1)
    source, target = tmp_path / "r.tsv", tmp_path / "a.tsv"
    _results_tsv(crowd, source)
    aggregate_file(source, target, method="wawa")
    answers = read_assignments_tsv(source)
    expected = aggregate(answers, "wawa", known=answers.set_index("task")["golden"].dropna())
    rows = pd.read_csv(target, sep="\t", keep_default_na=False)
    assert rows["INPUT:image"].tolist() == expected["task"].tolist()
    assert rows["OUTPUT:result"].tolist() == expected["label"].tolist()
    assert rows["CONFIDENCE:result"].to_numpy() == pytest.approx(expected["confidence"], abs=5e-5)
    again = io.StringIO()
    write_aggregated_tsv(rows.itertuples(index=False, name=None), again)
    assert again.getvalue() == target.read_text()


def test_aggregate_file_states_the_method_used_and_whether_confidence_is_calibrated(tmp_path):
    crowd = simulate_crowd(300, 15, n_labels=3, overlap=3, spammers=0.2, seed=4)
    source, target = tmp_path / "results.tsv", tmp_path / "aggregated.tsv"
    _results_tsv(crowd, source)  # every 10th task is a control task: 30 known
    summary = aggregate_file(source, target)
    assert summary["method"] == "auto" and summary["calibrated"] is True
    assert summary["method_used"] in {"ds", "bds", "one_coin_ds", "glad", "wawa", "mv", "mean"}
    assert 0.0 <= summary["heldout_ece"] <= 1.0 and "ds" in summary["scores"]

    _results_tsv(crowd, source, golden_every=10**9)  # only task t0 is a control task
    summary = aggregate_file(source, target)
    assert summary["method_used"] == "bds" and summary["calibrated"] is False
    assert summary["heldout_ece"] is None
    summary = aggregate_file(source, target, method="Dawid-Skene")
    assert summary["method_used"] == "ds" and summary["calibrated"] is False
