"""Aggregation runs of a pool: start one (a job), list, read, page through labels, export TSV.

The work itself is ``workers/jobs/aggregation.py``; the maths is the pure ``aggregation``
package. A run belongs to the requester who owns its pool; anyone else's id is ``NotFound``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from aggregation.tsv import format_confidence, spreadsheet_safe
from app.db.models import (
    AggregatedLabel,
    AggregationRun,
    AssignmentStatus,
    Job,
    JobStatus,
    MediaFile,
    Pool,
    Project,
    Task,
    TaskKind,
    User,
    WorkerQuality,
)
from app.errors import Conflict, NotFound, ValidationFailed
from app.services import answer_sets
from app.services.jobs.records import create_job, get_job
from app.services.listing import ListParams, ListSpec, Page, paginate
from app.services.projects.progress import public_id
from app.services.projects.projects import list_options
from app.services.projects.upload_formats import requester_image
from app.settings import get_settings

JOB_KIND = "aggregation"
OPERATION_TYPE = "SOLUTION.AGGREGATE"
DEFAULT_METHOD = "auto"

METHOD_NAMES: dict[str, str] = {
    "auto": "Auto (chosen and calibrated on control tasks)",
    "ds": "Dawid-Skene",
    "bds": "Bayesian Dawid-Skene",
    "mv": "Majority vote",
    "one_coin_ds": "One-coin Dawid-Skene",
    "glad": "GLAD",
    "wawa": "Wawa",
}
"""Methods offered in the product (keys are ``aggregation.get_method`` names)."""

TOLOKA_TYPES: dict[str, str] = {
    "DAWID_SKENE": "ds",
    "MAJORITY_VOTE": "mv",
    # Toloka weights answers by a skill here; without skills it is a majority vote.
    "WEIGHTED_DYNAMIC_OVERLAP": "mv",
    "ONE_COIN_DAWID_SKENE": "one_coin_ds",
    "GLAD": "glad",
    "WAWA": "wawa",
}
"""Toloka's ``aggregate-by-pool`` ``type`` values -> our method names."""

PAGE_LIMIT_MAX = 100_000


class OperationExists(Conflict):
    """A client-chosen operation id is taken (Toloka's code, so clients fetch it instead)."""

    code = "OPERATION_ALREADY_EXISTS"


def method_name(method: str) -> str:
    """The human name of a method key."""
    return METHOD_NAMES.get(method, method)


def usable_statuses(pool: Pool) -> list[str]:
    """Assignment statuses whose answers count: accepted, plus submitted under auto-accept."""
    if pool.auto_accept:
        return [AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED]
    return [AssignmentStatus.ACCEPTED]


def _owned_pool(session: Session, *, requester: User, pool_id: int | str) -> Pool:
    pool = session.get(Pool, int(pool_id)) if str(pool_id).isdigit() else None
    if pool is None or pool.owner_id != requester.id:
        raise NotFound("No such pool.")
    return pool


def get_pool_for_aggregation(session: Session, *, requester: User, pool_id: int | str) -> Pool:
    """One of the requester's pools (someone else's → ``NotFound``)."""
    return _owned_pool(session, requester=requester, pool_id=pool_id)


def start_aggregation(
    session: Session,
    *,
    requester: User,
    pool_id: int | str,
    method: str = DEFAULT_METHOD,
    use_known: bool = True,
    output_field: str = "result",
    external_id: str | None = None,
) -> AggregationRun:
    """Create a run of ``method`` over a pool's answers and queue its job."""
    pool = _owned_pool(session, requester=requester, pool_id=pool_id)
    method = (method or DEFAULT_METHOD).strip().lower()
    if method not in METHOD_NAMES:
        choices = ", ".join(METHOD_NAMES)
        raise ValidationFailed(
            "Unknown aggregation method.", errors={"method": f"Choose one of: {choices}."}
        )
    general = session.exec(
        select(func.count())
        .select_from(Task)
        .where(Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL)
    ).one()
    if not general:
        raise Conflict("This pool has no general tasks to aggregate.")
    if external_id and session.exec(select(Job.id).where(Job.external_id == external_id)).first():
        raise OperationExists(f"An operation with id {external_id} already exists.")
    assert pool.id is not None and requester.id is not None
    run = AggregationRun(
        pool_id=pool.id,
        owner_id=requester.id,
        method=method,
        params={"use_known": bool(use_known), "output_field": output_field},
    )
    session.add(run)
    session.flush()
    job = create_job(
        session,
        kind=JOB_KIND,
        owner=requester,
        payload={
            "operation_type": OPERATION_TYPE,
            "parameters": {"pool_id": public_id(pool.id)},
            "run_id": run.id,
        },
        external_id=external_id,
    )
    run.job_id = job_id = job.id
    assert job_id is not None
    session.add(run)
    session.commit()
    from workers.queue import dispatch  # the queue is wired at the edge, as in submit_job

    dispatch(job_id)
    session.refresh(run)
    return run


def list_runs(session: Session, *, requester: User, pool_id: int | str) -> list[AggregationRun]:
    """A pool's runs, newest first."""
    pool = _owned_pool(session, requester=requester, pool_id=pool_id)
    return list(
        session.exec(
            select(AggregationRun)
            .where(AggregationRun.pool_id == pool.id)
            .order_by(col(AggregationRun.id).desc())
        ).all()
    )


RUN_LIST = ListSpec(
    sorts={
        "created": col(AggregationRun.id),
        "method": col(AggregationRun.method),
        "status": col(AggregationRun.status),
        "confidence": col(AggregationRun.mean_confidence),
        "unanswered": col(AggregationRun.unanswered_count),
    },
    default_sort="created",
    default_dir="desc",
    first_dirs={"confidence": "desc", "unanswered": "desc"},
    nulls_last=("confidence",),
    tiebreak=(col(AggregationRun.id),),
)
"""A pool's runs, newest first."""


def page_runs(session: Session, *, requester: User, pool_id: int | str, params: ListParams) -> Page:
    """One page of a pool's runs (someone else's pool: ``NotFound``)."""
    pool = _owned_pool(session, requester=requester, pool_id=pool_id)
    query = select(AggregationRun).where(AggregationRun.pool_id == pool.id)
    return paginate(session, query, spec=RUN_LIST, params=params)


def get_run(
    session: Session, *, requester: User, run_id: int | str, pool_id: int | str | None = None
) -> AggregationRun:
    """One of the requester's runs (of ``pool_id`` when given); otherwise ``NotFound``."""
    run = session.get(AggregationRun, int(run_id)) if str(run_id).isdigit() else None
    if run is None or run.owner_id != requester.id:
        raise NotFound("No such aggregation.")
    if pool_id is not None and str(run.pool_id) != str(pool_id).lstrip("0"):
        raise NotFound("No such aggregation.")
    pool = session.get(Pool, run.pool_id)
    if pool is None or pool.owner_id != requester.id:
        raise NotFound("No such aggregation.")
    return run


def get_run_for_operation(
    session: Session, *, requester: User, operation_id: str
) -> tuple[AggregationRun, Job]:
    """The run behind an aggregation operation id (job id or client-chosen id)."""
    job = get_job(session, owner=requester, job_id=operation_id)
    run_id = job.payload.get("run_id")
    if job.kind != JOB_KIND or run_id is None:
        raise NotFound("No such aggregation operation.")
    return get_run(session, requester=requester, run_id=run_id), job


def get_run_job(session: Session, *, run: AggregationRun) -> Job | None:
    """The job of a run (for its progress bar), if it still exists."""
    return session.get(Job, run.job_id) if run.job_id else None


def require_finished(run: AggregationRun) -> None:
    """Raise ``Conflict`` unless the run has succeeded."""
    if run.status == JobStatus.SUCCEEDED:
        return
    if run.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise Conflict(f"This aggregation {run.status}: {run.error or 'no results'}.")
    raise Conflict("This aggregation has not finished yet; wait for its operation.")


MEDIA_COLUMN = "MEDIA:url"
"""The extra export column with the address of a stored image (INPUT:image holds what
the requester gave: the URL, or the uploaded file's name)."""


@dataclass(frozen=True)
class LabelRow:
    """One general task's aggregated label."""

    task_id: int
    image: str  # where the image is served from (a URL, or /media/... for a stored file)
    value: str | None
    confidence: float | None
    answer_count: int
    input_values: dict | None = None
    original_name: str | None = None  # the stored file's name (older tasks keep no other)

    @property
    def input_image(self) -> str:
        """INPUT:image as the requester gave it: the URL, or the uploaded file's name."""
        base = get_settings().base_url
        return requester_image(self.input_values, self.image, self.original_name, base=base)

    @property
    def media_url(self) -> str:
        """The absolute address of a stored image; empty for an image given by URL."""
        return _image_ref(self.image) if self.image.startswith("/") else ""

    option_confidence: dict | None = None  # several answers: {option value: probability}


def _label_rows(run: AggregationRun, *, answered: bool | None) -> Select:
    query = (
        sa_select(
            col(AggregatedLabel.task_id),
            col(Task.image),
            col(AggregatedLabel.value),
            col(AggregatedLabel.confidence),
            col(AggregatedLabel.answer_count),
            col(Task.input_values),
            col(MediaFile.original_name),
            col(AggregatedLabel.option_confidence),
        )
        .join(Task, col(Task.id) == AggregatedLabel.task_id)
        .join(MediaFile, col(MediaFile.id) == Task.media_id, isouter=True)
        .where(col(AggregatedLabel.run_id) == run.id)
    )
    if answered is True:
        query = query.where(col(AggregatedLabel.value).is_not(None))
    elif answered is False:
        query = query.where(col(AggregatedLabel.value).is_(None))
    return query


def page_labels(
    session: Session,
    *,
    run: AggregationRun,
    limit: int = 50,
    task_id_gt: int | None = None,
    task_id_lt: int | None = None,
    descending: bool = False,
    answered: bool | None = True,
) -> tuple[list[LabelRow], bool]:
    """A page of a finished run's labels ordered by task id, and whether more follow."""
    require_finished(run)
    limit = max(1, min(int(limit), PAGE_LIMIT_MAX))
    query = _label_rows(run, answered=answered)
    if task_id_gt is not None:
        query = query.where(col(AggregatedLabel.task_id) > task_id_gt)
    if task_id_lt is not None:
        query = query.where(col(AggregatedLabel.task_id) < task_id_lt)
    order = col(AggregatedLabel.task_id)
    query = query.order_by(order.desc() if descending else order).limit(limit + 1)
    rows = [LabelRow(*row) for row in session.execute(query).all()]
    return rows[:limit], len(rows) > limit


def iter_labels(
    session: Session, *, run: AggregationRun, answered: bool | None = True, batch: int = 5000
) -> Iterator[LabelRow]:
    """Every label of a finished run in task order (positions, then ids), in batches."""
    require_finished(run)
    query = _label_rows(run, answered=answered).order_by(col(Task.position), col(Task.id))
    for row in session.execute(query.execution_options(yield_per=batch)):
        yield LabelRow(*row)


def _write_tsv(header: list[str], rows: list[list[str]]) -> str:
    """Toloka's TSV quoting; a ``MEDIA:url`` column only when some image is stored."""
    with_media = any(row[-1] for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(header + [MEDIA_COLUMN] if with_media else header)
    for row in rows:
        writer.writerow(row if with_media else row[:-1])
    return buffer.getvalue()


def build_results_tsv(session: Session, *, run: AggregationRun) -> str:
    """``INPUT:image  OUTPUT:<field>  CONFIDENCE:<field>``: one row per answered general
    task; INPUT:image is what the requester gave (URL or file name), and ``MEDIA:url``
    the stored image's address when the pool has uploaded images.

    Several answers: ``OUTPUT:<field>`` holds the set as a JSON list, then one
    ``CONFIDENCE:<value>`` column per option (the probability that the option is in the set)."""
    field = _field(run)
    pool = session.get(Pool, run.pool_id)
    project = session.get(Project, pool.project_id) if pool else None
    if project is not None and project.answer_type == answer_sets.MULTIPLE:
        options = [o.value for o in list_options(session, project=project)]
        rows = []
        for r in iter_labels(session, run=run):
            chances = r.option_confidence or {}
            rows.append(
                [
                    spreadsheet_safe(r.input_image),
                    answer_sets.encode(answer_sets.decode(r.value) or [], options),
                    *(format_confidence(float(chances.get(o, 0.0))) for o in options),
                    r.media_url,
                ]
            )
        header = ["INPUT:image", f"OUTPUT:{field}", *(f"CONFIDENCE:{o}" for o in options)]
        return _write_tsv(header, rows)
    rows = [
        [
            spreadsheet_safe(r.input_image),
            spreadsheet_safe(r.value),
            format_confidence(float(r.confidence or 0.0)),
            r.media_url,
        ]
        for r in iter_labels(session, run=run)
    ]
    return _write_tsv(["INPUT:image", f"OUTPUT:{field}", f"CONFIDENCE:{field}"], rows)


def build_unanswered_tsv(session: Session, *, run: AggregationRun) -> str:
    """``INPUT:image``: the general tasks nobody answered (usable answers), one per row."""
    rows = [
        [spreadsheet_safe(r.input_image), r.media_url]
        for r in iter_labels(session, run=run, answered=False)
    ]
    return _write_tsv(["INPUT:image"], rows)


def _image_ref(image: str) -> str:
    """Stored media paths as absolute URLs, as the raw results TSV writes them."""
    return f"{get_settings().base_url.rstrip('/')}{image}" if image.startswith("/") else image


def _field(run: AggregationRun) -> str:
    return str((run.params or {}).get("output_field") or "result")


def confidence_histogram(
    session: Session, *, run: AggregationRun, bins: int = 10
) -> list[tuple[str, int]]:
    """Answered tasks per confidence bin ``[0, 0.1), …, [0.9, 1]`` as ``(label, count)``."""
    counts = [0] * bins
    values = session.exec(
        select(AggregatedLabel.confidence).where(
            AggregatedLabel.run_id == run.id, col(AggregatedLabel.value).is_not(None)
        )
    ).all()
    for value in values:
        counts[min(int((value or 0.0) * bins), bins - 1)] += 1
    step = 1.0 / bins
    return [
        (f"{format_confidence(i * step)}–{format_confidence((i + 1) * step)}", counts[i])
        for i in range(bins)
    ]


@dataclass(frozen=True)
class WorkerRow:
    """A labeler's figures in one run."""

    labeler_id: int
    name: str
    accuracy: float | None
    answer_count: int
    control_answered: int
    control_correct: int
    labels: Sequence[str]
    matrix: Sequence[Sequence[float]]
    per_option: dict | None = None  # several answers: each option model's accuracy estimate

    @property
    def control_accuracy(self) -> float | None:
        """Share of control tasks answered correctly (None without control answers)."""
        return self.control_correct / self.control_answered if self.control_answered else None


def list_worker_quality(session: Session, *, run: AggregationRun) -> list[WorkerRow]:
    """Per-labeler estimated accuracy and confusion matrix, most answers first."""
    rows = session.exec(
        select(WorkerQuality, User.name, User.email)
        .join(User, col(User.id) == WorkerQuality.labeler_id)
        .where(WorkerQuality.run_id == run.id)
        .order_by(col(WorkerQuality.answer_count).desc(), col(WorkerQuality.labeler_id))
    ).all()
    result = []
    for quality, name, email in rows:
        confusion = quality.confusion or {}
        control = confusion.get("control") or {}
        result.append(
            WorkerRow(
                labeler_id=quality.labeler_id,
                name=name or email.split("@")[0],
                accuracy=quality.accuracy,
                answer_count=quality.answer_count,
                control_answered=int(control.get("answered", 0)),
                control_correct=int(control.get("correct", 0)),
                labels=list(confusion.get("labels", [])),
                matrix=list(confusion.get("matrix", [])),
                per_option=confusion.get("per_option"),
            )
        )
    return result


def run_duration_seconds(run: AggregationRun) -> float | None:
    """Seconds from start to finish, None while it has not finished."""
    if run.started_at and run.finished_at:
        return (run.finished_at - run.started_at).total_seconds()
    return None
