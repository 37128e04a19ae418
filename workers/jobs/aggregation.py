"""The aggregation job: a pool's usable answers → one label per general task + worker quality.

Usable answers: not ``Answer.excluded`` (quality control discarded them), of suites that are
accepted, or submitted too when the pool accepts automatically (a pool reviewed by hand only
counts what the requester accepted); rejected, expired, skipped and active suites never count.
General and control tasks are fitted together; control tasks' known answers are passed as
``known`` (their posterior is fixed, which sharpens the worker models) unless the run says not
to. Only general tasks get an ``AggregatedLabel`` row (value None when nobody answered).

The job is idempotent: a retry deletes the run's earlier rows and writes them again. The long
part (fitting) holds no database session, so SQLite writers are never blocked by it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from aggregation import get_method, quality_report
from aggregation.multilabel import encode_set, fit_multilabel, parse_set
from app.db.engine import session_scope
from app.db.models import (
    AggregatedLabel,
    AggregationRun,
    Answer,
    AnswerOption,
    Assignment,
    AssignmentStatus,
    JobStatus,
    Pool,
    Project,
    Task,
    TaskKind,
)
from app.db.types import utcnow
from app.services.aggregations.runs import JOB_KIND
from app.services.jobs.records import ProgressReporter
from workers.registry import job, on_failure

_LOAD, _FIT = 0.15, 0.80  # progress bar shares: loading ends at 15 %, fitting at 80 %
_CHUNK = 5000


def usable_statuses(pool: Pool) -> list[str]:
    """Assignment statuses whose answers count: accepted, plus submitted under auto-accept."""
    if pool.auto_accept:
        return [AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED]
    return [AssignmentStatus.ACCEPTED]


def _start(run_id: int, job_id: int) -> tuple[AggregationRun, Pool]:
    with session_scope() as session:
        run = session.get(AggregationRun, run_id)
        if run is None:
            raise LookupError(f"aggregation run {run_id} no longer exists")
        pool = session.get(Pool, run.pool_id)
        if pool is None:
            raise LookupError(f"the pool of aggregation run {run_id} no longer exists")
        run.status = JobStatus.RUNNING
        run.job_id = job_id
        run.started_at = utcnow()
        run.finished_at = None
        run.error = None
        session.add(run)
        session.commit()
        session.refresh(run)
        session.refresh(pool)
        session.expunge_all()
        return run, pool


def _options(pool: Pool) -> tuple[list[str], bool]:
    """The project's option values in order, and whether it asks for several answers."""
    with session_scope(write=False) as session:
        values = session.exec(
            select(AnswerOption.value)
            .where(AnswerOption.project_id == pool.project_id)
            .order_by(col(AnswerOption.position), col(AnswerOption.id))
        ).all()
        project = session.get(Project, pool.project_id)
        return list(values), project is not None and project.answer_type == "multiple"


def _load(pool: Pool) -> tuple[pd.DataFrame, pd.Series, list[int]]:
    """Answers (``task, worker, label, kind``), known answers, and the general task ids."""
    values, multiple = _options(pool)
    options = set(values)
    with session_scope(write=False) as session:
        query = (
            sa_select(Answer.task_id, Answer.labeler_id, Answer.value, Task.kind)
            .join(Assignment, col(Assignment.id) == Answer.assignment_id)
            .join(Task, col(Task.id) == Answer.task_id)
            .where(
                col(Answer.pool_id) == pool.id,
                col(Answer.excluded).is_(False),
                col(Assignment.status).in_(usable_statuses(pool)),
                col(Task.kind).in_([TaskKind.GENERAL, TaskKind.CONTROL]),
            )
        )
        # Core rows, not ORM rows: the answer table of a big pool has millions of them.
        rows = session.connection().execute(query).fetchall()
        known_rows = session.exec(
            select(Task.id, Task.known_answer).where(
                Task.pool_id == pool.id,
                Task.kind == TaskKind.CONTROL,
                col(Task.known_answer).is_not(None),
            )
        ).all()
        general = list(
            session.exec(
                select(Task.id)
                .where(Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL)
                .order_by(col(Task.position), col(Task.id))
            ).all()
        )
    # Columns via zip: pandas probing 10^6 Row objects one by one takes seconds.
    columns = ["task", "worker", "label", "kind"]
    data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    answers = pd.DataFrame({name: list(values) for name, values in zip(columns, data, strict=True)})
    known = pd.Series(dict(known_rows), dtype=object, name="label")
    if multiple:  # sets: answers that are not a set of the options never count
        fits = answers["label"].map(lambda v: (s := parse_set(v)) is not None and set(s) <= options)
        answers = answers[fits.astype(bool)] if len(answers) else answers
        known = known[known.map(lambda v: parse_set(v) is not None).astype(bool)]
    elif options:  # values outside the project's answer options never reach the results
        answers = answers[answers["label"].isin(options)]
        known = known[known.isin(options)]
    return answers.reset_index(drop=True), known, general


def _confusions(model: Any) -> np.ndarray:
    """``[worker, true, answered]`` probabilities: the model's own, or soft counts."""
    m = model.matrix_
    k = m.n_labels
    own = getattr(model, "confusion_", None)
    if isinstance(own, np.ndarray) and own.shape == (m.n_workers, k, k):
        return own.transpose(0, 2, 1)  # ours are [worker, answered, true]
    soft = np.asarray(m.pair_task @ model.posterior_).reshape(m.n_workers, k, k)
    totals = soft.sum(axis=1, keepdims=True)
    soft = np.divide(soft, totals, out=np.zeros_like(soft), where=totals > 0)
    return soft.transpose(0, 2, 1)


def _worker_rows(model: Any, answers: pd.DataFrame, known: pd.Series) -> list[dict]:
    m = model.matrix_
    labels = [str(x) for x in m.labels]
    confusion = np.round(_confusions(model), 4)
    accuracy = model.worker_accuracy_.to_numpy()
    control = answers[answers["task"].isin(known.index)]
    answered = control.groupby("worker").size()
    correct = control["label"].to_numpy() == known.reindex(control["task"]).to_numpy()
    right = pd.Series(correct, index=control["worker"].to_numpy()).groupby(level=0).sum()
    rows = []
    for code, worker in enumerate(m.workers):
        rows.append(
            {
                "labeler_id": int(worker),
                "accuracy": float(np.clip(accuracy[code], 0.0, 1.0)),
                "answer_count": int(m.worker_counts[code]),
                "confusion": {
                    "labels": labels,
                    "matrix": confusion[code].tolist(),
                    "control": {
                        "answered": int(answered.get(worker, 0)),
                        "correct": int(right.get(worker, 0)),
                    },
                },
            }
        )
    return rows


def _multilabel_worker_rows(fitted: Any, answers: pd.DataFrame, known: pd.Series) -> list[dict]:
    """Several answers: a labeler's accuracy is the mean of the option models' estimates;
    ``confusion`` holds each option's estimate; control counts exact matches of sets."""
    per_option = fitted.worker_accuracy()
    control = answers[answers["task"].isin(known.index)]
    answered = control.groupby("worker").size()
    correct = [
        set(parse_set(given) or []) == set(parse_set(want) or [])
        for given, want in zip(control["label"], known.reindex(control["task"]), strict=True)
    ]
    right = pd.Series(correct, index=control["worker"].to_numpy(), dtype=bool)
    right = right.groupby(level=0).sum()
    counts = answers.groupby("worker").size()
    rows = []
    for worker, estimates in per_option.iterrows():
        clean = {o: round(float(np.clip(v, 0, 1)), 4) for o, v in estimates.items() if v == v}
        rows.append(
            {
                "labeler_id": int(worker),
                "accuracy": float(np.mean(list(clean.values()))) if clean else None,
                "answer_count": int(counts.get(worker, 0)),
                "confusion": {
                    "labels": [],
                    "matrix": [],
                    "per_option": clean,
                    "control": {
                        "answered": int(answered.get(worker, 0)),
                        "correct": int(right.get(worker, 0)),
                    },
                },
            }
        )
    return rows


def _write(run_id: int, labels: list[dict], workers: list[dict], stats: dict) -> None:
    from app.db.models import WorkerQuality

    with session_scope() as session:
        session.execute(delete(AggregatedLabel).where(col(AggregatedLabel.run_id) == run_id))
        session.execute(delete(WorkerQuality).where(col(WorkerQuality.run_id) == run_id))
        for start in range(0, len(labels), _CHUNK):
            session.execute(insert(AggregatedLabel), labels[start : start + _CHUNK])
        for start in range(0, len(workers), _CHUNK):
            session.execute(insert(WorkerQuality), workers[start : start + _CHUNK])
        run = session.get(AggregationRun, run_id)
        assert run is not None
        run.status = JobStatus.SUCCEEDED
        run.finished_at = utcnow()
        for key in ("task_count", "unanswered_count", "answer_count", "mean_confidence"):
            setattr(run, key, stats[key])
        session.add(run)
        session.commit()


@job(JOB_KIND)
def run_aggregation(job_id: int, payload: dict, progress: ProgressReporter) -> dict:
    """Aggregate one run's pool; returns the run's figures (the operation's details)."""
    started = time.perf_counter()
    run, pool = _start(int(payload["run_id"]), job_id)
    progress(0.02, "Loading answers", force=True)
    answers, known, general = _load(pool)
    use_known = bool((run.params or {}).get("use_known", True))
    known = known[known.index.isin(answers["task"])] if use_known else known.iloc[:0]
    loaded = time.perf_counter()
    progress(_LOAD, f"Loaded {len(answers)} answers on {len(general)} tasks", force=True)

    def fitting(fraction: float, message: str) -> None:
        progress(_LOAD + (_FIT - _LOAD) * fraction, message)

    result: dict[int, tuple[str, float]] = {}
    option_confidence: dict[int, dict[str, float]] = {}
    workers: list[dict] = []
    report: dict[str, Any] | None = None
    values, multiple = _options(pool)
    if len(answers) and multiple:
        fitted_sets = fit_multilabel(
            answers[["task", "worker", "label"]], values, run.method, known=known,
            on_progress=fitting,
        )  # fmt: skip
        frame = fitted_sets.frame()
        for row in frame.itertuples(index=False):
            task_id = row[0]
            result[task_id] = (encode_set(row[1], values), float(row[2]))
            option_confidence[task_id] = {
                o: round(float(p), 6) for o, p in zip(values, row[3:], strict=True)
            }
        workers = [
            {"run_id": run.id, **row}
            for row in _multilabel_worker_rows(fitted_sets, answers, known)
        ]
    elif len(answers):
        model = get_method(run.method)()
        model.fit(answers[["task", "worker", "label"]], known=known, on_progress=fitting)
        frame = model.result_frame()
        result = dict(
            zip(frame["task"], zip(frame["label"], frame["confidence"], strict=True), strict=True)
        )
        workers = [{"run_id": run.id, **row} for row in _worker_rows(model, answers, known)]
        report = quality_report(model)
    fitted = time.perf_counter()
    progress(_FIT, "Writing labels", force=True)

    per_task = answers.groupby("task").size()
    labels, confidences = [], []
    for task_id in general:
        value, confidence = result.get(task_id, (None, None))
        if value is not None:
            confidence = float(min(max(confidence, 0.0), 1.0))
            confidences.append(confidence)
        labels.append(
            {
                "run_id": run.id,
                "task_id": task_id,
                "value": value,
                "confidence": confidence,
                "answer_count": int(per_task.get(task_id, 0)),
                "option_confidence": option_confidence.get(task_id),
            }
        )
    stats: dict[str, Any] = {
        "run_id": run.id,
        "method": run.method,
        "task_count": len(general),
        "unanswered_count": len(general) - len(confidences),
        "answer_count": len(answers),
        "worker_count": len(workers),
        "known_count": len(known),
        "mean_confidence": float(np.mean(confidences)) if confidences else None,
    }
    _write(run.id, labels, workers, stats)
    stats["method_used"] = report["method_used"] if report else run.method
    stats["calibration"] = report  # in the job's result: the run page shows it
    stats["timings"] = {
        "load_seconds": round(loaded - started, 3),
        "fit_seconds": round(fitted - loaded, 3),
        "write_seconds": round(time.perf_counter() - fitted, 3),
    }
    progress(1.0, f"Aggregated {len(confidences)} of {len(general)} tasks", force=True)
    return stats


@on_failure(JOB_KIND)
def mark_run_failed(payload: dict, message: str, cancelled: bool) -> None:
    """Record a failed or cancelled job on its run."""
    with session_scope() as session:
        run = session.get(AggregationRun, int(payload.get("run_id", 0)))
        if run is None:
            return
        run.status = JobStatus.CANCELLED if cancelled else JobStatus.FAILED
        run.error = message[:1000]
        run.finished_at = utcnow()
        session.add(run)
        session.commit()
