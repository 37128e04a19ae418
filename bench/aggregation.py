"""Benchmark: our vectorised Dawid-Skene against crowd-kit's DawidSkene, same data, same run.

For each size (answers) a simulated crowd with known truth is built (the classes, overlap,
worker accuracy and spammer/adversary shares vary with the size, see ``config_for``), then both
implementations fit it with the same ``n_iter`` and ``tol``. Reported per size: wall time of
each (best of ``--repeat`` runs; fit on the DataFrame plus reading the labels, so our time
includes the integer coding), the speed ratio, the share of tasks where the two agree, the
largest posterior gap, and the accuracy of both (and of majority vote) against the truth.

Usage:
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark, prints the table and, last, one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="answers, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (1 above 1e5)")
    parser.add_argument("--no-crowdkit", action="store_true", help="time ours only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
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
