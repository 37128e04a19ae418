"""File-to-file aggregation behind ``crowdlab aggregate RESULTS.tsv --method ds -o OUT.tsv``."""

from __future__ import annotations

import os
import time
from typing import Any

from aggregation.base import ProgressFn
from aggregation.matrix import encode_lists
from aggregation.registry import get_method, get_method_name
from aggregation.tsv import read_assignments, write_aggregated_tsv

_READ, _FIT = 0.1, 0.85  # shares of the progress bar: reading, then fitting, then writing


def aggregate_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    method: str = "auto",
    on_progress: ProgressFn | None = None,
    output_field: str = "result",
    **params: Any,
) -> dict[str, Any]:
    """Aggregates a Toloka-style raw results TSV into an aggregated TSV.

    Reads answers with :func:`~aggregation.tsv.read_assignments` (rejected assignments
    skipped), uses ``GOLDEN:<output_field>`` values as known answers, fits the method and writes
    ``INPUT:<f>  OUTPUT:<output_field>  CONFIDENCE:<output_field>`` with one row per task in
    order of first appearance (the INPUT header names are taken from the input file).

    Args:
        input_path: Raw results TSV.
        output_path: Where to write the aggregated TSV.
        method: A name accepted by :func:`~aggregation.registry.get_method`.
        on_progress: Called as ``on_progress(fraction, message)``: after reading, after every
            EM iteration, and when done.
        output_field: OUTPUT field holding the labels.
        **params: Hyper-parameters of the method (e.g. ``n_iter``).

    Returns:
        Summary: ``method`` (as asked), ``method_used`` (what ``auto`` chose, else the same),
        ``calibrated`` (True only when ``auto`` calibrated the confidence on control tasks),
        ``answers, tasks, workers, labels, known, iterations`` (None for non-iterative
        methods), ``mean_confidence``, ``heldout_ece`` (cross-fitted ECE on the control tasks,
        None when uncalibrated), ``scores`` (``auto``'s per-method held-out scores),
        ``seconds`` and ``output``.

    Raises:
        TsvError: The input cannot be read (names the row).
        ValueError: Unknown method or bad parameters.
    """
    started = time.perf_counter()
    model = get_method(method)(**params)

    def report(fraction: float, message: str) -> None:
        if on_progress is not None:
            on_progress(fraction, message)

    answers = read_assignments(input_path, output_field=output_field)
    known = answers.known()
    report(_READ, f"read {len(answers)} answers")

    def fitting(fraction: float, message: str) -> None:
        report(_READ + (_FIT - _READ) * fraction, message)

    # plain lists and numpy from file to file: no pandas import on this path
    matrix = encode_lists(answers.task, answers.worker, answers.label, known.values())
    codes = matrix.encode_known(known)
    model.fit_matrix(matrix, codes, on_progress=fitting)
    result = model.result_rows()
    write_aggregated_tsv(
        result, output_path, input_field=answers.input_fields, output_field=output_field
    )
    confidences = [confidence for _, _, confidence in result]
    calibrated = bool(getattr(model, "calibrated_", False))
    scores = getattr(model, "scores_", {}) or {}
    used = getattr(model, "method_", None) or get_method_name(method)
    summary: dict[str, Any] = {
        "method": method,
        "method_used": used,
        "calibrated": calibrated,
        "answers": matrix.n_answers,
        "tasks": matrix.n_tasks,
        "workers": matrix.n_workers,
        "labels": matrix.n_labels,
        "known": len(codes),
        "iterations": getattr(getattr(model, "model_", model), "n_iter_", None),
        "mean_confidence": sum(confidences) / len(confidences) if confidences else None,
        "heldout_ece": scores.get(used, {}).get("ece") if calibrated else None,
        "scores": scores,
        "seconds": round(time.perf_counter() - started, 3),
        "output": os.fspath(output_path),
    }
    report(1.0, f"wrote {matrix.n_tasks} tasks to {os.fspath(output_path)}")
    return summary
