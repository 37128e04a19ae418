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

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import case, delete, func, insert, literal, literal_column
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from aggregation import get_method, quality_report
from aggregation.matrix import AnswerMatrix, KnownCodes, encode_arrays
from aggregation.multilabel import encode_set, fit_multilabel, parse_set
from app.db.engine import session_scope
from app.db.models import (
    AggregatedLabel,
    AggregationRun,
    Answer,
    AnswerOption,
    Assignment,
    JobStatus,
    Pool,
    Project,
    Task,
    TaskKind,
)
from app.db.types import utcnow
from app.services.aggregations.runs import JOB_KIND, usable_statuses
from app.services.jobs.records import ProgressReporter
from workers.registry import job, on_failure

_LOAD, _FIT = 0.15, 0.80  # progress bar shares: loading ends at 15 %, fitting at 80 %
_CHUNK = 5000
_STREAM = 100_000
"""Rows per chunk read from a server-side cursor (databases without binary COPY)."""


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


@dataclass
class Loaded:
    """A pool's usable answers as coded arrays, its known answers, and its general task ids."""

    matrix: AnswerMatrix
    known: dict[int, str]
    general: list[int]


def _answer_query(pool: Pool, label: Any) -> Any:
    return (
        sa_select(Answer.task_id, Answer.labeler_id, label)
        .join(Assignment, col(Assignment.id) == Answer.assignment_id)
        .join(Task, col(Task.id) == Answer.task_id)
        .where(
            col(Answer.pool_id) == pool.id,
            col(Answer.excluded).is_(False),
            col(Assignment.status).in_(usable_statuses(pool)),
            col(Task.kind).in_([TaskKind.GENERAL, TaskKind.CONTROL]),
        )
    )


_CHUNK_SHIFT = 16
"""PostgreSQL packs the answers of each range of 2^16 task ids into one bytea value."""


def _packed_codes(connection: Any, query: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PostgreSQL: the three int4 columns of ``query`` packed by the server.

    Each row becomes 12 big-endian bytes (``int4send``) and the rows of a range of task ids
    are concatenated into one ``bytea`` (``string_agg``), so a few values cross the wire and
    numpy reads them at once: no Python object per row (a row-by-row ``COPY`` costs about
    20 us a row in the driver).
    """
    inner = query.subquery()
    task, worker, label = list(inner.c)
    packed = func.int4send(task).op("||")(func.int4send(worker)).op("||")(func.int4send(label))
    chunks = sa_select(func.string_agg(packed, literal_column("''::bytea"))).group_by(
        task.op(">>")(_CHUNK_SHIFT)
    )
    data = b"".join(bytes(part) for part in connection.execute(chunks).scalars())
    rows = np.frombuffer(data, dtype=">i4").reshape(-1, 3).astype(np.int64)
    return rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy()


def _stream_codes(connection: Any, query: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Any database: the rows in chunks of ``_STREAM`` (a server-side cursor where there is
    one), each chunk turned into numpy arrays at once."""
    parts: list[np.ndarray] = []
    result = connection.execution_options(stream_results=True, yield_per=_STREAM).execute(query)
    for chunk in result.partitions(_STREAM):
        parts.append(np.array(chunk, dtype=np.int64).reshape(-1, 3))
    rows = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int64)
    return rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy()


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


def _load_sets(pool: Pool, values: list[str]) -> tuple[Any, Any, list[int]]:
    """Several answers: the answers (``task, worker, label, kind``; each label a set) as a
    DataFrame, the known answers, and the general task ids."""
    import pandas as pd

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
    # answers that are not a set of the options never count
    fits = answers["label"].map(lambda v: (s := parse_set(v)) is not None and set(s) <= options)
    answers = answers[fits.astype(bool)] if len(answers) else answers
    known = known[known.map(lambda v: parse_set(v) is not None).astype(bool)]
    return answers.reset_index(drop=True), known, general


def _multilabel_worker_rows(fitted: Any, answers: Any, known: Any) -> list[dict]:
    """Several answers: a labeler's accuracy is the mean of the option models' estimates;
    ``confusion`` holds each option's estimate; control counts exact matches of sets."""
    import pandas as pd

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


def _load(pool: Pool) -> Loaded:
    """The usable answers, streamed into arrays (3 integers a row, never ORM objects).

    Labels are coded in the query (a ``CASE`` over the project's answer options, sorted, so
    code order is the tie rule), which also drops any value outside them. On PostgreSQL the
    server packs the rows into a few ``bytea`` values; elsewhere they come in chunks of a
    server-side cursor.
    """
    with session_scope(write=False) as session:
        options = set(
            session.exec(
                select(AnswerOption.value).where(AnswerOption.project_id == pool.project_id)
            ).all()
        )
        connection = session.connection()  # Core rows below: a pool can have 10^6 tasks
        known_rows = connection.execute(
            sa_select(Task.id, Task.known_answer).where(
                col(Task.pool_id) == pool.id,
                col(Task.kind) == TaskKind.CONTROL,
                col(Task.known_answer).is_not(None),
            )
        ).all()
        general = [
            task_id
            for (task_id,) in connection.execute(
                sa_select(Task.id)
                .where(col(Task.pool_id) == pool.id, col(Task.kind) == TaskKind.GENERAL)
                .order_by(col(Task.position), col(Task.id))
            ).all()
        ]
        if not options:  # no options defined: every value given is a label
            options = set(
                connection.execute(
                    sa_select(Answer.value).where(col(Answer.pool_id) == pool.id).distinct()
                ).scalars()
            )
        values = sorted(options)
        code = {value: i for i, value in enumerate(values)}
        label = case(code, value=col(Answer.value), else_=-1) if values else literal(-1)
        query = _answer_query(pool, label).where(col(Answer.value).in_(values))
        if connection.dialect.name == "postgresql":
            task, worker, labels = _packed_codes(connection, query)
        else:
            task, worker, labels = _stream_codes(connection, query)
    known = {task_id: value for task_id, value in known_rows if value in code}
    matrix = encode_arrays(task, worker, labels, values)
    return Loaded(_only_used_labels(matrix, known.values()), known, general)


def _only_used_labels(matrix: AnswerMatrix, known: Iterable[str]) -> AnswerMatrix:
    """The matrix with only the labels answered or known (as a DataFrame would code it)."""
    k = matrix.n_labels
    used = np.zeros(k, dtype=bool)
    used[np.unique(matrix.label)] = True
    where = {value: i for i, value in enumerate(matrix.label_values.tolist())}
    for value in known:
        used[where[value]] = True
    if used.all():
        return matrix
    recode = np.cumsum(used) - 1
    return AnswerMatrix(
        task=matrix.task,
        worker=matrix.worker,
        label=recode[matrix.label],
        task_values=matrix.task_values,
        worker_values=matrix.worker_values,
        label_values=matrix.label_values[used],
    )


def _confusions(model: Any) -> np.ndarray:
    """``[worker, true, answered]`` probabilities: the model's own, or soft counts."""
    m = model.matrix_
    k = m.n_labels
    own = getattr(model, "confusion_", None)
    if isinstance(own, np.ndarray) and own.shape == (m.n_workers, k, k):
        return own.transpose(0, 2, 1)  # ours are [worker, answered, true]
    soft = np.asarray(m.pair_sum @ model.posterior_).reshape(m.n_workers, k, k)
    totals = soft.sum(axis=1, keepdims=True)
    soft = np.divide(soft, totals, out=np.zeros_like(soft), where=totals > 0)
    return soft.transpose(0, 2, 1)


def _worker_rows(model: Any, known: KnownCodes) -> list[dict]:
    m = model.matrix_
    labels = [str(x) for x in m.label_values.tolist()]
    confusion = np.round(_confusions(model), 4)
    accuracy = model.worker_accuracy_.to_numpy()
    known_label = np.full(m.n_tasks, -1, dtype=np.int64)
    known_label[known.tasks] = known.labels
    control = known_label[m.task] >= 0
    answered = np.bincount(m.worker[control], minlength=m.n_workers)
    right = control & (m.label == known_label[m.task])
    correct = np.bincount(m.worker[right], minlength=m.n_workers)
    rows = []
    for code, worker in enumerate(m.worker_values.tolist()):
        rows.append(
            {
                "labeler_id": int(worker),
                "accuracy": float(np.clip(accuracy[code], 0.0, 1.0)),
                "answer_count": int(m.worker_counts[code]),
                "confusion": {
                    "labels": labels,
                    "matrix": confusion[code].tolist(),
                    "control": {"answered": int(answered[code]), "correct": int(correct[code])},
                },
            }
        )
    return rows


def _copy_labels(connection: Any, labels: list[dict]) -> None:
    """PostgreSQL: the label rows by ``COPY`` (a pool can have a million tasks)."""
    columns = ("run_id", "task_id", "value", "confidence", "answer_count", "option_confidence")
    raw = connection.connection.dbapi_connection
    sql = f"COPY aggregated_label ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(sql) as copy:
        for row in labels:
            copy.write_row([_copy_cell(row.get(c)) for c in columns])


def _copy_cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict) else value


def _write(run_id: int, labels: list[dict], workers: list[dict], stats: dict) -> None:
    from app.db.models import WorkerQuality

    with session_scope() as session:
        session.execute(delete(AggregatedLabel).where(col(AggregatedLabel.run_id) == run_id))
        session.execute(delete(WorkerQuality).where(col(WorkerQuality.run_id) == run_id))
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            _copy_labels(connection, labels)
        else:
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
    values, multiple = _options(pool)
    if multiple:
        return _run_sets(run, pool, values, progress, started)
    loaded_data = _load(pool)
    matrix, general = loaded_data.matrix, loaded_data.general
    use_known = bool((run.params or {}).get("use_known", True))
    known = matrix.encode_known(loaded_data.known if use_known else None)
    loaded = time.perf_counter()
    progress(_LOAD, f"Loaded {matrix.n_answers} answers on {len(general)} tasks", force=True)

    def fitting(fraction: float, message: str) -> None:
        progress(_LOAD + (_FIT - _LOAD) * fraction, message)

    result: dict[int, tuple[str, float]] = {}
    workers: list[dict] = []
    report: dict[str, Any] | None = None
    if matrix.n_answers:
        model = get_method(run.method)()
        model.fit_matrix(matrix, known, on_progress=fitting)
        result = {
            task: (value, confidence)
            for task, value, confidence in model.result_rows()  # type: ignore[misc]
        }
        workers = [{"run_id": run.id, **row} for row in _worker_rows(model, known)]
        report = quality_report(model)
    fitted = time.perf_counter()
    progress(_FIT, "Writing labels", force=True)

    per_task = dict(
        zip(matrix.task_values.tolist(), np.bincount(matrix.task).tolist(), strict=True)
    )
    return _finish(
        run, general, result, per_task, workers, report, progress,
        answers=matrix.n_answers, known=len(known), times=(started, loaded, fitted),
    )  # fmt: skip


def _run_sets(
    run: AggregationRun, pool: Pool, values: list[str], progress: ProgressReporter, started: float
) -> dict:
    """Several answers: one binary model per option (``aggregation.multilabel``)."""
    answers, known, general = _load_sets(pool, values)
    use_known = bool((run.params or {}).get("use_known", True))
    known = known[known.index.isin(answers["task"])] if use_known else known.iloc[:0]
    loaded = time.perf_counter()
    progress(_LOAD, f"Loaded {len(answers)} answers on {len(general)} tasks", force=True)

    def fitting(fraction: float, message: str) -> None:
        progress(_LOAD + (_FIT - _LOAD) * fraction, message)

    result: dict[int, tuple[str, float]] = {}
    option_confidence: dict[int, dict[str, float]] = {}
    workers: list[dict] = []
    if len(answers):
        fitted_sets = fit_multilabel(
            answers[["task", "worker", "label"]], values, run.method, known=known,
            on_progress=fitting,
        )  # fmt: skip
        for row in fitted_sets.frame().itertuples(index=False):
            task_id = row[0]
            result[task_id] = (encode_set(row[1], values), float(row[2]))
            option_confidence[task_id] = {
                o: round(float(p), 6) for o, p in zip(values, row[3:], strict=True)
            }
        workers = [
            {"run_id": run.id, **row}
            for row in _multilabel_worker_rows(fitted_sets, answers, known)
        ]
    fitted = time.perf_counter()
    progress(_FIT, "Writing labels", force=True)
    per_task = answers.groupby("task").size().to_dict()
    return _finish(
        run, general, result, per_task, workers, None, progress,
        answers=len(answers), known=len(known), times=(started, loaded, fitted),
        option_confidence=option_confidence,
    )  # fmt: skip


def _finish(
    run: AggregationRun,
    general: list[int],
    result: dict[int, tuple[str, float]],
    per_task: dict[int, int],
    workers: list[dict],
    report: dict[str, Any] | None,
    progress: ProgressReporter,
    *,
    answers: int,
    known: int,
    times: tuple[float, float, float],
    option_confidence: dict[int, dict[str, float]] | None = None,
) -> dict:
    """Write one label row per general task and the run's figures; the job's result."""
    started, loaded, fitted = times
    labels, confidences = [], []
    for task_id in general:
        value, confidence = result.get(task_id, (None, None))
        if value is not None:
            confidence = float(min(max(confidence, 0.0), 1.0))
            confidences.append(confidence)
        label = {
            "run_id": run.id,
            "task_id": task_id,
            "value": value,
            "confidence": confidence,
            "answer_count": int(per_task.get(task_id, 0)),
        }
        if option_confidence is not None:
            label["option_confidence"] = option_confidence.get(task_id)
        labels.append(label)
    stats: dict[str, Any] = {
        "run_id": run.id,
        "method": run.method,
        "task_count": len(general),
        "unanswered_count": len(general) - len(confidences),
        "answer_count": answers,
        "worker_count": len(workers),
        "known_count": known,
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
