"""Benchmark: our aggregation against crowd-kit, on real crowds (``--real``) or simulated ones.

``--real`` (the accuracy and calibration benchmark): every real dataset with gold labels that
:mod:`bench.truth_data` finds (``--data`` or ``$CROWDLAB_TRUTH_DATA``: a clone or git mirror of
github.com/yuan-li/truth-inference-at-scale). For each dataset and seed, 10% of the tasks
(``--gold``) get their gold label as a control task (``known``) and the other 90% are scored:
accuracy and ECE (10 equal-width bins) of the chosen label's confidence, per method: MV, Wawa,
DS without and with the control tasks, one-coin DS, GLAD, Bayesian DS and ``auto`` (which
method it chose is printed), then the means. Times: ours (``auto`` in full, DS) beside
crowd-kit's DawidSkene on the same answers.

Without ``--real``: our vectorised Dawid-Skene against crowd-kit's DawidSkene, same data, same run.

For each size (answers) a simulated crowd with known truth is built (the classes, overlap,
worker accuracy and spammer/adversary shares vary with the size, see ``config_for``), then both
implementations fit it with the same ``n_iter`` and ``tol``. Reported per size: wall time of
each (best of ``--repeat`` runs; fit on the DataFrame plus reading the labels, so our time
includes the integer coding), the speed ratio, the share of tasks where the two agree, the
largest posterior gap, and the accuracy of both (and of majority vote) against the truth.

Usage:
    python bench/aggregation.py --real [--data DIR] [--gold 0.1] [--seeds 1] [--no-crowdkit]
    python bench/aggregation.py [--sizes 10000,100000,1000000] [--repeat 3] [--no-crowdkit]

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, not this script

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from aggregation import DawidSkene, MajorityVote, simulate_crowd  # noqa: E402

CONFIGS: list[dict[str, Any]] = [
    # classes, overlap, workers, honest accuracy range, spammer and adversary shares
    {"n_labels": 2, "overlap": 3, "n_workers": 50, "accuracy": (0.6, 0.9), "spammers": 0.3},
    {"n_labels": 5, "overlap": 5, "n_workers": 300, "accuracy": (0.5, 0.95), "spammers": 0.2,
     "adversaries": 0.05},
    {"n_labels": 4, "overlap": 5, "n_workers": 2000, "accuracy": (0.55, 0.95), "spammers": 0.25,
     "adversaries": 0.05},
    {"n_labels": 3, "overlap": 7, "n_workers": 10000, "accuracy": (0.6, 0.95), "spammers": 0.2},
]  # fmt: skip


def config_for(n_answers: int) -> dict[str, Any]:
    """The crowd shape used at a size: 1e4 -> CONFIGS[0], 1e5 -> [1], 1e6 -> [2], 1e7 -> [3]."""
    return CONFIGS[int(np.clip(round(np.log10(max(n_answers, 1))) - 4, 0, len(CONFIGS) - 1))]


def _best_time(fit: Callable[[], pd.Series], repeat: int) -> tuple[float, pd.Series]:
    best, labels = float("inf"), pd.Series(dtype=object)
    for _ in range(repeat):
        started = time.perf_counter()
        labels = fit()
        best = min(best, time.perf_counter() - started)
    return best, labels


def _accuracy(labels: pd.Series, truth: pd.Series) -> float:
    return float((labels == truth.reindex(labels.index)).mean())


def run_size(
    n_answers: int, config: dict[str, Any], repeat: int, crowdkit: bool, seed: int
) -> dict[str, Any]:
    """Simulates one crowd of about ``n_answers`` answers and measures both implementations."""
    n_tasks = max(n_answers // config["overlap"], 1)
    crowd = simulate_crowd(n_tasks, seed=seed, **config)
    df, truth = crowd.answers, crowd.truth
    ours = DawidSkene(n_iter=100, tol=1e-5)
    ours_s, ours_labels = _best_time(lambda: ours.fit(df).labels_, repeat)
    row: dict[str, Any] = {
        "answers": len(df),
        "tasks": n_tasks,
        **{k: v for k, v in config.items() if k != "accuracy"},
        "accuracy_range": list(config["accuracy"]),
        "ours_s": round(ours_s, 4),
        "ours_iterations": ours.n_iter_,
        "ours_accuracy": round(_accuracy(ours_labels, truth), 4),
        "mv_accuracy": round(_accuracy(MajorityVote().fit_predict(df), truth), 4),
    }
    if crowdkit:
        from crowdkit.aggregation import DawidSkene as CrowdKitDawidSkene

        theirs = CrowdKitDawidSkene(n_iter=100, tol=1e-5)
        ck_s, ck_labels = _best_time(lambda: theirs.fit(df).labels_, repeat)
        assert theirs.probas_ is not None
        aligned = theirs.probas_.reindex(index=ours.probas_.index, columns=ours.probas_.columns)
        gap = np.abs(ours.probas_.to_numpy() - aligned.to_numpy())
        row.update(
            crowdkit_s=round(ck_s, 4),
            crowdkit_iterations=len(theirs.loss_history_),
            crowdkit_accuracy=round(_accuracy(ck_labels, truth), 4),
            speedup=round(ck_s / ours_s, 1),
            agreement=round(float((ours_labels == ck_labels.reindex(ours_labels.index)).mean()), 6),
            max_posterior_gap=float(gap.max()),
        )
    return row


def _table(rows: list[dict[str, Any]]) -> str:
    columns = [
        ("answers", "answers", "{:,}"),
        ("n_labels", "K", "{}"),
        ("overlap", "overlap", "{}"),
        ("n_workers", "workers", "{:,}"),
        ("spammers", "spam", "{}"),
        ("ours_s", "ours s", "{:.3f}"),
        ("crowdkit_s", "crowd-kit s", "{:.3f}"),
        ("speedup", "x faster", "{:.1f}"),
        ("ours_iterations", "iters", "{}"),
        ("crowdkit_iterations", "ck iters", "{}"),
        ("agreement", "agree", "{:.4%}"),
        ("max_posterior_gap", "max |dp|", "{:.1e}"),
        ("ours_accuracy", "acc ours", "{:.4f}"),
        ("crowdkit_accuracy", "acc ck", "{:.4f}"),
        ("mv_accuracy", "acc MV", "{:.4f}"),
    ]
    cells = [[title for _, title, _ in columns]]
    for row in rows:
        cells.append([fmt.format(row[key]) if key in row else "-" for key, _, fmt in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells
    )


REAL_METHODS = ["mv", "wawa", "ds0", "ds", "one_coin_ds", "glad", "bds", "auto"]
"""Columns of the real-data table; ``ds0`` is Dawid-Skene ignoring the control tasks."""

DUPLICATES = {"d_Duck Identification": "bluebird", "s4_Dog data": "dog"}
"""Datasets the source holds twice under two names: scored once."""


def ece_floor(confidence: np.ndarray, seed: int, draws: int = 50) -> float:
    """The ECE that confidences exactly right would still show on this many tasks: the mean
    ECE of ``confidence`` against outcomes drawn as Bernoulli(``confidence``). The ECE of a
    few hundred tasks is never 0; this is the part of it that is sampling noise."""
    from aggregation import expected_calibration_error

    rng = np.random.default_rng(seed)
    draws_ece = [
        expected_calibration_error(confidence, rng.random(len(confidence)) < confidence)
        for _ in range(draws)
    ]
    return float(np.mean(draws_ece))


def control_noise_ece(
    raw: np.ndarray, correct: np.ndarray, n_known: int, n_labels: int, seed: int, draws: int = 20
) -> float:
    """The ECE that ``auto``'s calibration would still show if its control tasks were exactly
    like the scored ones: the mean, over ``draws`` random samples of ``n_known`` scored tasks,
    of the ECE on the other scored tasks of the Platt map (``auto``'s, same prior) fitted on
    the sample's uncalibrated confidences ``raw``. What is left is the sampling noise of a
    control set of this size (chiefly of its accuracy: about ``sqrt(acc (1 - acc) / n)``),
    which no map fitted on those control tasks alone can remove."""
    from aggregation import Auto, PlattCalibrator, expected_calibration_error

    rng = np.random.default_rng(seed)
    n = len(raw)
    if n_known < Auto.min_known or n_known >= n:
        return float("nan")
    out = []
    for _ in range(draws):
        sample = np.zeros(n, dtype=bool)
        sample[rng.choice(n, n_known, replace=False)] = True
        calibrator = PlattCalibrator(Auto.calibration_strength, floor=1.0 / n_labels)
        calibrator.fit(raw[sample], correct[sample])
        out.append(expected_calibration_error(calibrator(raw[~sample]), correct[~sample]))
    return float(np.mean(out))


def run_real_dataset(data: Any, gold_share: float, seed: int, crowdkit: bool) -> dict[str, Any]:
    """Scores every method on one real dataset with ``gold_share`` of its tasks known."""
    from aggregation import expected_calibration_error, get_method

    rng = np.random.default_rng(seed)
    tasks = data.truth.index.to_numpy()
    gold = rng.choice(tasks, size=max(1, round(gold_share * len(tasks))), replace=False)
    known, scored = data.truth[gold], data.truth.drop(gold)
    row: dict[str, Any] = {
        "dataset": data.name, "seed": seed, "answers": len(data.answers),
        "tasks": len(tasks), "known": len(known),
        "labels": data.answers["label"].nunique(),
    }  # fmt: skip
    for name in REAL_METHODS:
        model = get_method("ds" if name == "ds0" else name)()
        started = time.perf_counter()
        model.fit(data.answers, known=None if name == "ds0" else known)
        seconds = time.perf_counter() - started
        labels = model.labels_.reindex(scored.index)
        confidence = model.confidence_.reindex(scored.index).to_numpy()
        correct = (labels == scored).to_numpy()
        row[f"{name}_acc"] = float(correct.mean())
        row[f"{name}_ece"] = expected_calibration_error(confidence, correct)
        row[f"{name}_s"] = seconds
        if name == "auto":
            row["auto_pick"] = model.method_
            row["auto_heldout_ece"] = model.scores_.get(model.method_, {}).get("ece")
            row["auto_ece_floor"] = ece_floor(confidence, seed)
            codes = model.matrix_.tasks.get_indexer(scored.index)
            answered = codes >= 0  # a gold task nobody answered has no confidence to map
            codes = codes[answered]
            raw = model.uncalibrated_posterior_[codes, model.label_codes_[codes]]
            row["auto_ece_limit"] = control_noise_ece(
                raw, correct[answered].astype(float), len(known), model.matrix_.n_labels, seed
            )
    if crowdkit:
        from crowdkit.aggregation import DawidSkene as CrowdKitDawidSkene

        started = time.perf_counter()
        CrowdKitDawidSkene(n_iter=100, tol=1e-5).fit(data.answers)
        row["crowdkit_ds_s"] = time.perf_counter() - started
    return row


def _real_table(rows: list[dict[str, Any]]) -> str:
    head = ["dataset", "tasks", "K", *[f"{m} acc" for m in REAL_METHODS]]
    head += [f"{m} ECE" for m in ("ds0", "ds", "bds", "auto")]
    head += ["ECE floor", "ctl limit", "auto pick", "auto s", "ds s", "ck ds s"]
    cells = [head]

    def fmt(row: dict[str, Any], key: str, pattern: str = "{:.3f}") -> str:
        value = row.get(key)
        return "-" if value is None else pattern.format(value)

    for row in rows:
        line = [str(row["dataset"])[:14], str(row["tasks"]), str(row["labels"])]
        line += [fmt(row, f"{m}_acc") for m in REAL_METHODS]
        line += [fmt(row, f"{m}_ece") for m in ("ds0", "ds", "bds", "auto")]
        line += [
            fmt(row, "auto_ece_floor"),
            fmt(row, "auto_ece_limit"),
            str(row.get("auto_pick", "")),
            fmt(row, "auto_s", "{:.2f}"),
            fmt(row, "ds_s"),
        ]
        line += [fmt(row, "crowdkit_ds_s")]
        cells.append(line)
    widths = [max(len(line[i]) for line in cells) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells
    )


MEAN_SUFFIXES = ("_acc", "_ece", "_s", "_floor", "_limit")
"""The figures whose means the JSON line carries."""


def main_real(args: argparse.Namespace) -> dict[str, Any]:
    """The real-data benchmark: per-dataset table, means, one JSON line."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from truth_data import default_root, load_datasets

    root = args.data or default_root()
    if root is None:
        raise SystemExit("no data: pass --data DIR or set CROWDLAB_TRUTH_DATA (see truth_data.py)")
    names = [n for n in args.datasets.split(",") if n] if args.datasets else None
    datasets = [d for d in load_datasets(root, names) if d.name not in DUPLICATES]
    rows = []
    for data in datasets:
        for seed in range(args.seeds):
            rows.append(run_real_dataset(data, args.gold, args.seed + seed, not args.no_crowdkit))
            print(f"done {data.name} seed {seed}", file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    per_dataset = frame.groupby("dataset", sort=False).mean(numeric_only=True).reset_index()
    picks = frame.groupby("dataset", sort=False)["auto_pick"].agg(
        lambda s: "/".join(sorted(set(s)))
    )
    per_dataset["auto_pick"] = per_dataset["dataset"].map(picks)
    table_rows = per_dataset.to_dict("records")
    means = per_dataset.mean(numeric_only=True).to_dict()
    means.update(dataset="MEAN", tasks=int(per_dataset["tasks"].sum()), labels=0, auto_pick="")
    print(
        f"Real crowds: {len(datasets)} datasets, {args.gold:.0%} of tasks known (control), "
        f"the rest scored; {args.seeds} seed(s). Accuracy and ECE (10 bins) on scored tasks."
    )
    print(_real_table([*table_rows, means]))
    worst = float((per_dataset["auto_acc"] - per_dataset[["ds_acc", "ds0_acc"]].max(axis=1)).min())
    print(
        f"auto: mean accuracy {means['auto_acc']:.4f} (DS {means['ds_acc']:.4f}, DS without "
        f"control tasks {means['ds0_acc']:.4f}), mean ECE {means['auto_ece']:.4f} (DS "
        f"{means['ds_ece']:.4f}); worst dataset vs the better DS: {worst * 100:+.2f} points; "
        f"ECE floor (auto's confidences if exactly right) {means['auto_ece_floor']:.4f}; "
        f"control-set limit (the same Platt map fitted on as many tasks drawn from the scored "
        f"ones) {means['auto_ece_limit']:.4f}"
    )
    result = {
        "benchmark": "aggregation.real_crowds",
        "baseline": "crowdkit.aggregation.DawidSkene (time); DS (accuracy, ECE)",
        "gold_share": args.gold,
        "seeds": args.seeds,
        "means": {k: v for k, v in means.items() if k.endswith(MEAN_SUFFIXES)},
        "worst_auto_vs_ds_points": worst * 100,
        "datasets": table_rows,
    }
    print(json.dumps(result, default=float))
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark, prints the table and, last, one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="real crowds with gold labels")
    parser.add_argument("--data", help="clone or git mirror of the datasets (see truth_data.py)")
    parser.add_argument("--datasets", help="only these dataset names, comma-separated")
    parser.add_argument("--gold", type=float, default=0.1, help="share of tasks known (--real)")
    parser.add_argument("--seeds", type=int, default=1, help="gold draws per dataset (--real)")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="answers, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (1 above 1e5)")
    parser.add_argument("--no-crowdkit", action="store_true", help="time ours only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.real:
        return main_real(args)
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    rows = []
    for i, size in enumerate(sizes):
        repeat = args.repeat if size <= 100_000 else 1
        config = config_for(size)
        rows.append(run_size(size, config, repeat, not args.no_crowdkit, args.seed + i))
        print(f"done {size:,} answers", file=sys.stderr, flush=True)
    print("Dawid-Skene: crowdlab aggregation vs crowd-kit (n_iter=100, tol=1e-5)")
    print(_table(rows))
    result = {
        "benchmark": "aggregation.dawid_skene_vs_crowdkit",
        "baseline": "crowdkit.aggregation.DawidSkene",
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "sizes": rows,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
