"""The per-image results of an aggregation run: each task's label, its confidence and the
answers it rests on (each labeler's answer, by name), filtered, sorted and paged in SQL.

Where a requester checks quality before downloading: the least confident labels, the tasks
labelers disagreed on, the control tasks and who missed them. Only the pool's owner sees it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlmodel import Session, col
from sqlmodel import select as sqlmodel_select

from app.db.models import (
    AggregatedLabel,
    AggregationRun,
    Answer,
    Assignment,
    JobStatus,
    Pool,
    Project,
    Task,
    TaskKind,
    User,
)
from app.services.aggregations.runs import (
    get_pool_for_aggregation,
    get_run,
    require_finished,
    usable_statuses,
)
from app.services.listing import ListParams, ListSpec, Page, paginate
from app.services.projects.projects import list_options

LABEL = func.coalesce(col(AggregatedLabel.value), col(Task.known_answer))
"""The task's label: the aggregated one, or the known answer of a control task."""

RESULT_LIST = ListSpec(
    sorts={
        "task": (col(Task.position), col(Task.id)),
        "confidence": col(AggregatedLabel.confidence),
        "label": LABEL,
        "answers": col(AggregatedLabel.answer_count),
    },
    default_sort="task",
    first_dirs={"answers": "desc"},
    nulls_last=("confidence", "label", "answers"),
    search=(col(Task.image),),
    tiebreak=(col(Task.id),),
    per_page=25,
)
"""Results in task order; sortable by confidence, label and answers; searched in the image."""


@dataclass(frozen=True)
class ResultFilters:
    """Which tasks to show: a label, confidence below a fraction, only the ones labelers
    disagreed on, control tasks instead of general ones."""

    label: str | None = None
    below: float | None = None
    disagreement: bool = False
    control: bool = False


@dataclass(frozen=True)
class GivenAnswer:
    """One labeler's answer to a task (``correct`` only for control tasks)."""

    labeler_id: int
    labeler: str
    value: str
    correct: bool | None


@dataclass
class ResultRow:
    """One image: its label, confidence, how many answers the run counted, and the answers."""

    task_id: int
    image: str
    kind: str
    known_answer: str | None
    label: str | None
    confidence: float | None
    answer_count: int | None
    answers: list[GivenAnswer] = field(default_factory=list)

    @property
    def distribution(self) -> list[tuple[str, int]]:
        """``(value, count)`` of the answers, most frequent first."""
        return Counter(a.value for a in self.answers).most_common()

    @property
    def unanimous(self) -> bool:
        """Every answer is the same (True without answers too)."""
        return len({a.value for a in self.answers}) <= 1


def _counted(pool: Pool):
    """Answers the aggregation counts: not excluded, of a usable assignment."""
    return and_(
        col(Answer.pool_id) == pool.id,
        col(Answer.excluded).is_(False),
        col(Assignment.status).in_(usable_statuses(pool)),
    )


def _disagreed(pool: Pool):
    return (
        select(col(Answer.task_id))
        .join(Assignment, col(Assignment.id) == Answer.assignment_id)
        .where(_counted(pool))
        .group_by(col(Answer.task_id))
        .having(func.count(func.distinct(col(Answer.value))) > 1)
    )


def _statement(run: AggregationRun, pool: Pool, filters: ResultFilters):
    kind = TaskKind.CONTROL if filters.control else TaskKind.GENERAL
    query = (
        select(
            col(Task.id),
            col(Task.image),
            col(Task.kind),
            col(Task.known_answer),
            LABEL,
            col(AggregatedLabel.confidence),
            col(AggregatedLabel.answer_count),
        )
        .select_from(Task)
        .outerjoin(
            AggregatedLabel,
            and_(col(AggregatedLabel.task_id) == Task.id, col(AggregatedLabel.run_id) == run.id),
        )
        .where(col(Task.pool_id) == pool.id, col(Task.kind) == kind)
    )
    if filters.label:
        query = query.where(LABEL == filters.label)
    if filters.below is not None:
        query = query.where(col(AggregatedLabel.confidence) < filters.below)
    if filters.disagreement:
        query = query.where(col(Task.id).in_(_disagreed(pool)))
    return query


def _attach_answers(session: Session, pool: Pool, rows: list[ResultRow]) -> None:
    by_task = {row.task_id: row for row in rows}
    if not by_task:
        return
    given = session.execute(
        select(
            col(Answer.task_id),
            col(Answer.labeler_id),
            col(Answer.value),
            col(User.name),
            col(User.email),
        )
        .join(Assignment, col(Assignment.id) == Answer.assignment_id)
        .join(User, col(User.id) == Answer.labeler_id)
        .where(_counted(pool), col(Answer.task_id).in_(list(by_task)))
        .order_by(col(Answer.id))
    ).all()
    for task_id, labeler_id, value, name, email in given:
        row = by_task[task_id]
        correct = value == row.known_answer if row.kind == TaskKind.CONTROL else None
        labeler = name or email.split("@")[0]
        row.answers.append(GivenAnswer(labeler_id, labeler, value, correct))


def page_results(
    session: Session,
    *,
    requester: User,
    pool_id: int | str,
    run_id: int | str,
    filters: ResultFilters,
    params: ListParams,
) -> tuple[AggregationRun, Page]:
    """One page of a finished run's per-image results (someone else's run: ``NotFound``)."""
    run = get_run(session, requester=requester, run_id=run_id, pool_id=pool_id)
    require_finished(run)
    pool = session.get(Pool, run.pool_id)
    page = paginate(
        session,
        _statement(run, pool, filters),
        spec=RESULT_LIST,
        params=params,
        row=lambda r: ResultRow(*r),
    )
    _attach_answers(session, pool, page.items)
    return run, page


def list_labels(session: Session, *, pool: Pool) -> list[str]:
    """The answer option values a result can have (for the label filter)."""
    return [o.value for o in list_options(session, project=session.get(Project, pool.project_id))]


def get_latest_finished_run(
    session: Session, *, requester: User, pool_id: int | str
) -> AggregationRun | None:
    """The pool's newest succeeded run, if any (someone else's pool: ``NotFound``)."""
    pool = get_pool_for_aggregation(session, requester=requester, pool_id=pool_id)
    return session.exec(
        sqlmodel_select(AggregationRun)
        .where(AggregationRun.pool_id == pool.id, AggregationRun.status == JobStatus.SUCCEEDED)
        .order_by(col(AggregationRun.id).desc())
        .limit(1)
    ).first()
