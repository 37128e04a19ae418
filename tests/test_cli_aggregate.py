"""``crowdlab aggregate``: offline aggregation of a Toloka-style results TSV."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aggregation import simulate_crowd
from app.cli import main

HEADER = "INPUT:image\tOUTPUT:result\tGOLDEN:result\tASSIGNMENT:worker_id\tASSIGNMENT:status\n"


def _write(path, rows):
    path.write_text(HEADER + "".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _read(path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="\t"))


def test_aggregates_a_results_file_with_a_progress_bar(tmp_path, capsys):
    source = _write(
        tmp_path / "results.tsv",
        [
            ("a.png", "cat", "", "w1", "APPROVED"),
            ("a.png", "cat", "", "w2", "APPROVED"),
            ("a.png", "dog", "", "w3", "APPROVED"),
            ("b.png", "dog", "", "w1", "APPROVED"),
            ("b.png", "cat", "", "w2", "REJECTED"),
            ("c.png", "cat", "cat", "w2", "APPROVED"),
        ],
    )
    out = tmp_path / "aggregated.tsv"

    code = main(["aggregate", str(source), "--method", "ds", "-o", str(out)])

    assert code == 0
    rows = _read(out)
    assert rows[0] == ["INPUT:image", "OUTPUT:result", "CONFIDENCE:result"]
    assert [r[:2] for r in rows[1:]] == [["a.png", "cat"], ["b.png", "dog"], ["c.png", "cat"]]
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows[1:])
    err = capsys.readouterr().err
    assert "100.0%" in err and "[####" in err
    assert "3 tasks, 5 answers" in err and str(out) in err


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("a.png", "cat", "", "w1", "APPROVED"), ("b.png", "cat", "")], "row 3: 3 fields"),
        ([("a.png", "cat", "", "", "APPROVED")], "row 2, column ASSIGNMENT:worker_id"),
        ([("", "cat", "", "w1", "APPROVED")], "row 2, column INPUT:image: empty INPUT"),
    ],
)
def test_bad_input_names_the_row_exits_2_and_writes_nothing(tmp_path, capsys, rows, expected):
    folder = tmp_path / "files"
    folder.mkdir()
    source = _write(folder / "results.tsv", rows)

    code = main(["aggregate", str(source), "-o", str(folder / "aggregated.tsv"), "-q"])

    assert code == 2
    assert expected in capsys.readouterr().err
    assert list(folder.iterdir()) == [source]


def test_unknown_method_and_missing_file_exit_2(tmp_path, capsys):
    source = _write(tmp_path / "results.tsv", [("a.png", "cat", "", "w1", "APPROVED")])

    assert main(["aggregate", str(source), "--method", "magic", "-o", "x.tsv"]) == 2
    assert "unknown aggregation method 'magic'" in capsys.readouterr().err
    assert main(["aggregate", str(tmp_path / "none.tsv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_dawid_skene_beats_majority_vote_on_a_simulated_results_file(tmp_path):
    crowd = simulate_crowd(
        n_tasks=200, n_workers=15, n_labels=3, overlap=5, spammers=0.3, adversaries=0.2, seed=1
    )
    rows = [
        (f"{task}.png", label, "", worker, "APPROVED")
        for task, worker, label in crowd.answers.itertuples(index=False, name=None)
    ]
    source = _write(tmp_path / "results.tsv", rows)
    accuracy = {}
    for method in ("mv", "ds"):
        out = tmp_path / f"{method}.tsv"
        assert main(["aggregate", str(source), "-m", method, "-o", str(out), "-q"]) == 0
        labels = {image.removesuffix(".png"): label for image, label, _ in _read(out)[1:]}
        accuracy[method] = sum(labels[t] == y for t, y in crowd.truth.items()) / len(labels)
    assert accuracy["ds"] >= accuracy["mv"] + 0.1


def test_formula_inputs_come_out_neutralised_and_read_back_as_given(tmp_path):
    formula = '=HYPERLINK("http://evil.example","click")'
    source = _write(
        tmp_path / "results.tsv",
        [
            ('"' + formula.replace('"', '""') + '"', "cat", "", "w1", "APPROVED"),
            ('"' + formula.replace('"', '""') + '"', "cat", "", "w2", "APPROVED"),
            ("b.png", "dog", "", "w1", "APPROVED"),
        ],
    )
    out = tmp_path / "aggregated.tsv"
    assert main(["aggregate", str(source), "-o", str(out)]) == 0
    rows = _read(out)
    assert ["'" + formula, "cat"] in [r[:2] for r in rows[1:]]
    # read back (as a results file of its own): the quote is taken off again
    from aggregation import read_assignments_tsv

    again = tmp_path / "again.tsv"
    again.write_text(
        "INPUT:image\tOUTPUT:result\tASSIGNMENT:worker_id\n"
        + "".join(
            "\t".join('"' + c.replace('"', '""') + '"' for c in (r[0], r[1], "w9")) + "\n"
            for r in rows[1:]
        ),
        encoding="utf-8",
    )
    assert set(read_assignments_tsv(again)["task"]) == {formula, "b.png"}


def test_the_summary_names_the_method_and_says_when_confidence_is_uncalibrated(tmp_path, capsys):
    crowd = simulate_crowd(200, 12, n_labels=2, overlap=3, seed=2)
    rows = [
        (f"{task}.png", label, "", worker, "APPROVED")
        for task, worker, label in crowd.answers.itertuples(index=False)
    ]
    source = _write(tmp_path / "results.tsv", rows)

    assert main(["aggregate", str(source), "-o", str(tmp_path / "out.tsv")]) == 0
    err = capsys.readouterr().err
    assert "method auto → bds" in err and "UNCALIBRATED" in err

    gold = [
        (name, label, crowd.truth[name.removesuffix(".png")] if i % 10 == 0 else "", w, s)
        for i, (name, label, _, w, s) in enumerate(rows)
    ]
    source = _write(tmp_path / "gold.tsv", gold)
    assert main(["aggregate", str(source), "-o", str(tmp_path / "out2.tsv")]) == 0
    err = capsys.readouterr().err
    assert "method auto → " in err and "calibrated on control tasks" in err


def test_aggregating_a_file_imports_neither_pandas_nor_scipy(tmp_path):
    # importing them costs more than the whole fit of a small file: the command stays fast
    crowd = simulate_crowd(100, 10, n_labels=3, overlap=3, seed=4)
    rows = [
        (f"{task}.png", label, crowd.truth[task] if i % 5 == 0 else "", worker, "APPROVED")
        for i, (task, worker, label) in enumerate(crowd.answers.itertuples(index=False))
    ]
    source = _write(tmp_path / "results.tsv", rows)
    out = tmp_path / "out.tsv"
    code = (
        "import sys; from app.cli import main; "
        f"assert main(['aggregate', {str(source)!r}, '-o', {str(out)!r}, '-q']) == 0; "
        "print(sorted(m for m in ('pandas', 'scipy') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert len(_read(out)) == 101
