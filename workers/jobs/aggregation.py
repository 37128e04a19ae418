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
    general: np.ndarray


@dataclass
class Labels:
    """One label row per general task, as arrays: ``code`` indexes ``values`` (-1: nobody
    answered, confidence NaN); ``option_confidence`` only for several answers."""

    task: np.ndarray
    code: np.ndarray
    values: list[str]
    confidence: np.ndarray
    count: np.ndarray
    option_confidence: list[dict | None] | None = None


_CHUNK_SHIFT = 16
"""PostgreSQL packs the answers of each range of 2^16 task ids into one bytea value."""


def _packed_ints(connection: Any, query: Any) -> np.ndarray:
    """PostgreSQL: the int4 columns of ``query`` (never NULL) as an ``(n, columns)`` array.

    Each row becomes 4 big-endian bytes a column (``int4send``) and the rows of a range of
    first-column values are concatenated into one ``bytea`` (``string_agg``), so a few values
    cross the wire and numpy reads them at once: no Python object per row (a row-by-row
    ``COPY`` costs about 20 us a row in the driver).
    """
    inner = query.subquery()
    columns = list(inner.c)
    packed = func.int4send(columns[0])
    for column in columns[1:]:
        packed = packed.op("||")(func.int4send(column))
    chunks = sa_select(func.string_agg(packed, literal_column("''::bytea"))).group_by(
        columns[0].op(">>")(_CHUNK_SHIFT)
    )
    data = b"".join(bytes(part) for part in connection.execute(chunks).scalars())
    return np.frombuffer(data, dtype=">i4").reshape(-1, len(columns)).astype(np.int64)


def _stream_ints(connection: Any, query: Any, width: int) -> np.ndarray:
    """Any database: the rows in chunks of ``_STREAM`` (a server-side cursor where there is
    one), each chunk turned into a numpy array at once."""
    parts: list[np.ndarray] = []
    result = connection.execution_options(stream_results=True, yield_per=_STREAM).execute(query)
    for chunk in result.partitions(_STREAM):
        parts.append(np.array(chunk, dtype=np.int64).reshape(-1, width))
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.int64)


def _int_rows(connection: Any, query: Any, width: int) -> np.ndarray:
    if connection.dialect.name == "postgresql":
        return _packed_ints(connection, query)
    return _stream_ints(connection, query, width)


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
    """The usable answers, streamed into arrays (4 integers a row, never ORM objects).

    Labels are coded in the query (a ``CASE`` over the project's answer options, sorted, so
    code order is the tie rule; -1 for any value outside them). The answers come from one
    scan of the pool's answers, without joins: their suites' and tasks' eligibility is
    checked by numpy against the pool's usable suite ids and general or control task ids
    (on 10^6 answers, PostgreSQL's hash joins took longer than the scan itself). On
    PostgreSQL the server packs the rows into a few ``bytea`` values; elsewhere they come
    in chunks of a server-side cursor.
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
        tasks = _int_rows(
            connection,
            sa_select(Task.id, case((col(Task.kind) == TaskKind.GENERAL, 1), else_=0)).where(
                col(Task.pool_id) == pool.id,
                col(Task.kind).in_([TaskKind.GENERAL, TaskKind.CONTROL]),
            ),
            2,
        )
        suites = _int_rows(
            connection,
            sa_select(Assignment.id).where(
                col(Assignment.pool_id) == pool.id,
                col(Assignment.status).in_(usable_statuses(pool)),
            ),
            1,
        )[:, 0]
        if not options:  # no options defined: every value given is a label
            options = set(
                connection.execute(
                    sa_select(Answer.value).where(col(Answer.pool_id) == pool.id).distinct()
                ).scalars()
            )
        values = sorted(options)
        code = {value: i for i, value in enumerate(values)}
        label = case(code, value=col(Answer.value), else_=-1) if values else literal(-1)
        query = sa_select(Answer.task_id, Answer.labeler_id, label, Answer.assignment_id).where(
            col(Answer.pool_id) == pool.id, col(Answer.excluded).is_(False)
        )
        if connection.dialect.name == "postgresql":
            # the packed rows are the aggregate's state (16 bytes an answer): held in memory
            # rather than spilled to disk and read again (3 * 10^6 answers: 48 MB)
            connection.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        rows = _int_rows(connection, query, 4)
    usable = (rows[:, 2] >= 0) & _member(rows[:, 3], suites) & _member(rows[:, 0], tasks[:, 0])
    if not usable.all():
        rows = rows[usable]
    known = {task_id: value for task_id, value in known_rows if value in code}
    task, worker, label = (np.ascontiguousarray(rows[:, i]) for i in range(3))  # no strides
    matrix = encode_arrays(task, worker, label, values)
    general = tasks[tasks[:, 1] == 1, 0]
    return Loaded(_only_used_labels(matrix, known.values()), known, general)


def _member(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Whether each value is one of ``ids``, by a table over their range (O(n), no sort)."""
    if not len(ids):
        return np.zeros(len(values), dtype=bool)
    low, high = int(ids.min()), int(ids.max())
    table = np.zeros(high - low + 1, dtype=bool)
    table[ids - low] = True
    inside = (values >= low) & (values <= high)
    found = np.zeros(len(values), dtype=bool)
    found[inside] = table[values[inside] - low]
    return found


def _only_used_labels(matrix: AnswerMatrix, known: Iterable[str]) -> AnswerMatrix:
    """The matrix with only the labels answered or known (as a DataFrame would code it)."""
    k = matrix.n_labels
    used = np.bincount(matrix.label, minlength=k) > 0  # O(n): no sort of 10^6 codes
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


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, no flags, no extension
_COPY_TRAILER = b"\xff\xff"


def _binary_block(run_id: int, labels: Labels, rows: np.ndarray, value: bytes | None) -> bytes:
    """``COPY … (FORMAT binary)`` rows ``run_id, task_id, value, confidence, answer_count``
    of the labels at ``rows``, which all have ``value`` (None: unanswered, confidence NULL):
    rows of one shape, built by numpy at once."""
    fields: list[tuple[str, str]] = [("n", ">i2"), ("l_run", ">i4"), ("run", ">i4")]
    fields += [("l_task", ">i4"), ("task", ">i4"), ("l_value", ">i4")]
    if value:
        fields.append(("value", f"S{len(value)}"))
    fields.append(("l_confidence", ">i4"))
    if value is not None:
        fields.append(("confidence", ">f8"))
    fields += [("l_count", ">i4"), ("count", ">i4")]
    block = np.zeros(len(rows), dtype=fields)
    block["n"] = 5
    block["l_run"], block["run"] = 4, run_id
    block["l_task"], block["task"] = 4, labels.task[rows]
    block["l_value"] = -1 if value is None else len(value)
    if value:
        block["value"] = value
    if value is None:
        block["l_confidence"] = -1
    else:
        block["l_confidence"], block["confidence"] = 8, labels.confidence[rows]
    block["l_count"], block["count"] = 4, labels.count[rows]
    return block.tobytes()


def _copy_labels(connection: Any, run_id: int, labels: Labels) -> None:
    """PostgreSQL: the label rows by binary ``COPY`` (a pool can have a million tasks), one
    block of same-shaped rows per label value; several answers' rows one by one."""
    raw = connection.connection.dbapi_connection
    columns = "run_id, task_id, value, confidence, answer_count"
    with raw.cursor() as cursor:
        if labels.option_confidence is not None:
            sql = f"COPY aggregated_label ({columns}, option_confidence) FROM STDIN"
            with cursor.copy(sql) as copy:
                for row in _label_dicts(run_id, labels):
                    option = row["option_confidence"]
                    copy.write_row(
                        [*list(row.values())[:5], None if option is None else json.dumps(option)]
                    )
            return
        sql = f"COPY aggregated_label ({columns}) FROM STDIN (FORMAT binary)"
        with cursor.copy(sql) as copy:
            copy.write(_COPY_HEADER)
            for code in np.unique(labels.code).tolist():
                rows = np.flatnonzero(labels.code == code)
                value = None if code < 0 else labels.values[code].encode()
                copy.write(_binary_block(run_id, labels, rows, value))
            copy.write(_COPY_TRAILER)


def _label_dicts(run_id: int, labels: Labels) -> Iterable[dict]:
    values = [None, *labels.values]  # code -1 → None
    rows = zip(
        labels.task.tolist(),
        (labels.code + 1).tolist(),
        labels.confidence.tolist(),
        labels.count.tolist(),
        labels.option_confidence or [None] * len(labels.task),
        strict=True,
    )
    for task, code, confidence, count, option in rows:
        row = {
            "run_id": run_id,
            "task_id": task,
            "value": values[code],
            "confidence": None if code == 0 else confidence,
            "answer_count": count,
        }
        if labels.option_confidence is not None:
            row["option_confidence"] = option
        yield row


def _write(run_id: int, labels: Labels, workers: list[dict], stats: dict) -> None:
    from app.db.models import WorkerQuality

    with session_scope() as session:
        # the run row stays locked until the labels are in: a deletion of the run waits,
        # then its trigger deletes them (aggregated_label has no foreign key to check)
        run = session.exec(
            select(AggregationRun).where(AggregationRun.id == run_id).with_for_update()
        ).first()
        if run is None:
            raise LookupError(f"aggregation run {run_id} no longer exists")
        session.execute(delete(AggregatedLabel).where(col(AggregatedLabel.run_id) == run_id))
        session.execute(delete(WorkerQuality).where(col(WorkerQuality.run_id) == run_id))
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            _copy_labels(connection, run_id, labels)
        else:
            rows = list(_label_dicts(run_id, labels))
            for start in range(0, len(rows), _CHUNK):
                session.execute(insert(AggregatedLabel), rows[start : start + _CHUNK])
        for start in range(0, len(workers), _CHUNK):
            session.execute(insert(WorkerQuality), workers[start : start + _CHUNK])
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

    labels = _no_labels(general)
    workers: list[dict] = []
    report: dict[str, Any] | None = None
    if matrix.n_answers:
        model = get_method(run.method)()
        model.fit_matrix(matrix, known, on_progress=fitting)
        labels = _model_labels(model, general)
        workers = [{"run_id": run.id, **row} for row in _worker_rows(model, known)]
        report = quality_report(model)
    fitted = time.perf_counter()
    progress(_FIT, "Writing labels", force=True)
    return _finish(
        run, labels, workers, report, progress,
        answers=matrix.n_answers, known=len(known), times=(started, loaded, fitted),
    )  # fmt: skip


def _no_labels(general: np.ndarray) -> Labels:
    n = len(general)
    return Labels(
        task=np.asarray(general, dtype=np.int64),
        code=np.full(n, -1, dtype=np.int64),
        values=[],
        confidence=np.full(n, np.nan),
        count=np.zeros(n, dtype=np.int64),
    )


def _model_labels(model: Any, general: np.ndarray) -> Labels:
    """The fitted model's label of each general task (tasks it never saw: none), as arrays."""
    import pandas as pd

    m = model.matrix_
    where = pd.Index(m.task_values).get_indexer(general)
    seen = where >= 0
    at = np.where(seen, where, 0)
    code = np.where(seen, np.asarray(model.label_codes_, dtype=np.int64)[at], -1)
    confidence = np.where(seen, np.asarray(model.confidence_array(), dtype=float)[at], np.nan)
    count = np.where(seen, np.bincount(m.task, minlength=m.n_tasks)[at], 0)
    return Labels(
        task=np.asarray(general, dtype=np.int64),
        code=code,
        values=[str(v) for v in m.label_values.tolist()],
        confidence=confidence,
        count=count,
    )


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
    sets = sorted({value for value, _ in result.values()})
    code_of = {value: i for i, value in enumerate(sets)}
    missing = (None, float("nan"))
    labels = Labels(
        task=np.asarray(general, dtype=np.int64),
        code=np.array(
            [code_of.get(result.get(t, missing)[0], -1) for t in general], dtype=np.int64
        ),
        values=sets,
        confidence=np.array([result.get(t, missing)[1] for t in general], dtype=float),
        count=np.array([per_task.get(t, 0) for t in general], dtype=np.int64),
        option_confidence=[option_confidence.get(t) for t in general],
    )
    return _finish(
        run, labels, workers, None, progress,
        answers=len(answers), known=len(known), times=(started, loaded, fitted),
    )  # fmt: skip


def _finish(
    run: AggregationRun,
    labels: Labels,
    workers: list[dict],
    report: dict[str, Any] | None,
    progress: ProgressReporter,
    *,
    answers: int,
    known: int,
    times: tuple[float, float, float],
) -> dict:
    """Write one label row per general task and the run's figures; the job's result."""
    started, loaded, fitted = times
    answered = labels.code >= 0
    labels.confidence = np.where(answered, np.clip(labels.confidence, 0.0, 1.0), np.nan)
    n_answered = int(answered.sum())
    stats: dict[str, Any] = {
        "run_id": run.id,
        "method": run.method,
        "task_count": len(labels.task),
        "unanswered_count": len(labels.task) - n_answered,
        "answer_count": answers,
        "worker_count": len(workers),
        "known_count": known,
        "mean_confidence": float(labels.confidence[answered].mean()) if n_answered else None,
    }
    _write(run.id, labels, workers, stats)
    stats["method_used"] = report["method_used"] if report else run.method
    stats["calibration"] = report  # in the job's result: the run page shows it
    stats["timings"] = {
        "load_seconds": round(loaded - started, 3),
        "fit_seconds": round(fitted - loaded, 3),
        "write_seconds": round(time.perf_counter() - fitted, 3),
    }
    progress(1.0, f"Aggregated {n_answered} of {len(labels.task)} tasks", force=True)
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
