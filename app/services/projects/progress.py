"""Pool progress: the live figures, the per-labeler table and the raw answers TSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy import case, func, or_
from sqlmodel import Session, select

from aggregation.tsv import spreadsheet_safe
from app.db.models import (
    Answer,
    Assignment,
    AssignmentStatus,
    Ban,
    BanScope,
    MediaFile,
    Pool,
    Project,
    Task,
    TaskKind,
    User,
)
from app.db.types import utcnow
from app.services import answer_sets
from app.services.figures_cache import page_figures
from app.services.money import ledger
from app.services.projects.pools import get_pool
from app.services.projects.projects import list_options
from app.services.projects.tally import LARGE_POOL_TASKS, recent_tally
from app.services.projects.upload_formats import requester_image
from app.settings import get_settings

# From this many answers a pool's progress is reused for a few seconds (see above).
LARGE_POOL_ANSWERS = 50_000
DONE_STATUSES = (AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED, AssignmentStatus.REJECTED)
RAW_COLUMNS = (
    "INPUT:image",
    "OUTPUT:result",
    "GOLDEN:result",
    "ASSIGNMENT:worker_id",
    "ASSIGNMENT:assignment_id",
    "ASSIGNMENT:started",
    "ASSIGNMENT:submitted",
)


def public_id(number: int | None) -> str:
    """An id as it appears on the wire: a fixed-width decimal string (sorts like the number)."""
    return "" if number is None else f"{number:010d}"


@dataclass
class LabelerRow:
    """One labeler's work in a pool."""

    labeler_id: int
    name: str
    suites: int = 0
    control_answers: int = 0
    control_correct: int = 0
    majority_answers: int = 0
    majority_agree: int = 0
    seconds: list[float] = field(default_factory=list)
    status: str = "idle"

    @property
    def control_accuracy(self) -> float | None:
        """Share of control answers that were right (None before any)."""
        return self.control_correct / self.control_answers if self.control_answers else None

    @property
    def majority_agreement(self) -> float | None:
        """Share of answers on tasks with a majority that agree with it."""
        return self.majority_agree / self.majority_answers if self.majority_answers else None

    @property
    def average_seconds(self) -> float | None:
        """Mean time per submitted suite."""
        return sum(self.seconds) / len(self.seconds) if self.seconds else None


@dataclass
class PoolProgress:
    """What the pool page shows live."""

    tasks_total: int
    tasks_done: int
    answers: int
    suites_submitted: int
    spent_cents: int
    reserved_cents: int
    active_labelers: int
    average_seconds: float | None
    banned_labelers: int
    labelers: list[LabelerRow]
    # several answers: per option, the share of control answers that got that option right
    # (ticked when it should be, left when not): [(value, label, accuracy or None, count)]
    option_accuracy: list[tuple[str, str, float | None, int]] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """Tasks done as a fraction of all general tasks."""
        return self.tasks_done / self.tasks_total if self.tasks_total else 0.0


def _active_bans(session: Session, pool: Pool) -> set[int]:
    now = utcnow()
    rows = session.exec(
        select(Ban.labeler_id).where(
            Ban.requester_id == pool.owner_id,
            Ban.lifted_at.is_(None),
            or_(Ban.expires_at.is_(None), Ban.expires_at > now),
            or_(
                Ban.scope == BanScope.ALL_PROJECTS,
                (Ban.scope == BanScope.PROJECT) & (Ban.project_id == pool.project_id),
                (Ban.scope == BanScope.POOL) & (Ban.pool_id == pool.id),
            ),
        )
    )
    return set(rows)


def _seconds(assignment) -> float | None:
    """Time spent on a submitted suite (an ``Assignment`` or a row of its columns)."""
    if assignment.duration_seconds is not None:
        return float(assignment.duration_seconds)
    if assignment.submitted_at and assignment.created_at:
        return (assignment.submitted_at - assignment.created_at).total_seconds()
    return None


def _live_answers(pool: Pool) -> tuple:
    return Answer.pool_id == pool.id, Answer.excluded.is_(False)


def _answer_figures(session: Session, pool: Pool) -> dict[int, list[int]]:
    """Per labeler with answers in the pool: [answers, control answers, right ones, answers
    on tasks with a majority (two votes or more, no tie for the most), ones agreeing with
    it]. Counted in the database: a pool page must not read every answer into Python."""
    live = _live_answers(pool)
    figures = {
        labeler_id: [int(n), 0, 0, 0, 0]
        for labeler_id, n in session.exec(
            select(Answer.labeler_id, func.count()).where(*live).group_by(Answer.labeler_id)
        ).all()
    }
    if not figures:
        return figures
    right = func.sum(case((Answer.value == Task.known_answer, 1), else_=0))  # sets: exact
    for labeler_id, n, agree in session.exec(
        select(Answer.labeler_id, func.count(), right)
        .join(Task, Task.id == Answer.task_id)
        .where(*live, Task.kind == TaskKind.CONTROL, Task.known_answer.is_not(None))
        .group_by(Answer.labeler_id)
    ).all():
        figures[labeler_id][1:3] = [int(n), int(agree or 0)]
    votes = (
        select(Answer.task_id, Answer.value, func.count().label("n"))
        .join(Task, Task.id == Answer.task_id)
        .where(*live, Task.kind == TaskKind.GENERAL)
        .group_by(Answer.task_id, Answer.value)
        .cte("votes")
    )
    most = (
        select(votes.c.task_id, func.max(votes.c.n).label("n"))
        .group_by(votes.c.task_id)
        .having(func.sum(votes.c.n) >= 2)
        .cte("most")
    )
    majority = (
        select(votes.c.task_id, func.min(votes.c.value).label("value"))
        .join(most, (most.c.task_id == votes.c.task_id) & (most.c.n == votes.c.n))
        .group_by(votes.c.task_id)
        .having(func.count() == 1)  # a tie for the most: no majority
        .cte("majority")
    )
    agreeing = func.sum(case((Answer.value == majority.c.value, 1), else_=0))
    for labeler_id, n, agree in session.exec(
        select(Answer.labeler_id, func.count(), agreeing)
        .join(majority, majority.c.task_id == Answer.task_id)
        .where(*live)
        .group_by(Answer.labeler_id)
    ).all():
        figures[labeler_id][3:5] = [int(n), int(agree or 0)]
    return figures


def get_pool_progress(session: Session, *, requester: User, pool_id: int) -> PoolProgress:
    """The pool's figures and per-labeler table (someone else's pool → ``NotFound``); for a
    large pool they may be a few seconds old (``app.services.figures_cache``)."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    return page_figures.get(
        ("progress", pool.id),
        lambda: _count_progress(session, pool),
        keep=lambda p: p.tasks_total >= LARGE_POOL_TASKS or p.answers >= LARGE_POOL_ANSWERS,
    )


def _count_progress(session: Session, pool: Pool) -> PoolProgress:
    tally = recent_tally(session, pool=pool)
    tasks_total = tally.counts[TaskKind.GENERAL]
    tasks_done = tally.general_done
    # the columns the table needs, not ORM objects: a pool page reads every assignment
    assignments = session.exec(
        select(
            Assignment.labeler_id,
            Assignment.status,
            Assignment.expires_at,
            Assignment.duration_seconds,
            Assignment.created_at,
            Assignment.submitted_at,
        ).where(Assignment.pool_id == pool.id)
    ).all()
    banned = _active_bans(session, pool)
    people: dict[int, LabelerRow] = {}
    ids = {a.labeler_id for a in assignments}
    names = (
        dict(session.exec(select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}
    )
    now = utcnow()
    all_seconds: list[float] = []

    def row_of(labeler_id: int) -> LabelerRow:  # (built only the first time: once per labeler)
        row = people.get(labeler_id)
        if row is None:
            row = people[labeler_id] = LabelerRow(labeler_id, names.get(labeler_id, ""))
        return row

    for a in assignments:
        row = row_of(a.labeler_id)
        if a.status in DONE_STATUSES:
            row.suites += 1
            seconds = _seconds(a)
            if seconds is not None:
                row.seconds.append(seconds)
                all_seconds.append(seconds)
        elif a.status == AssignmentStatus.ACTIVE and a.expires_at > now:
            row.status = "working"
    answers = 0
    for labeler_id, figures in _answer_figures(session, pool).items():
        row = row_of(labeler_id)
        answers += figures[0]
        row.control_answers, row.control_correct = figures[1], figures[2]
        row.majority_answers, row.majority_agree = figures[3], figures[4]
    for labeler_id in banned & people.keys():
        people[labeler_id].status = "banned"
    active = sum(1 for row in people.values() if row.status == "working")
    option_accuracy = []
    project = session.get(Project, pool.project_id)
    if project.answer_type == answer_sets.MULTIPLE:
        options = list_options(session, project=project)
        pairs = session.exec(
            select(Answer.value, Task.known_answer)
            .join(Task, Task.id == Answer.task_id)
            .where(
                *_live_answers(pool), Task.kind == TaskKind.CONTROL, Task.known_answer.is_not(None)
            )
        ).all()
        tally = answer_sets.per_option(pairs, [o.value for o in options])
        for option in options:
            right, total = tally[option.value]
            option_accuracy.append(
                (option.value, option.label, right / total if total else None, total)
            )
    return PoolProgress(
        option_accuracy=option_accuracy,
        tasks_total=tasks_total,
        tasks_done=tasks_done,
        answers=answers,
        suites_submitted=sum(row.suites for row in people.values()),
        spent_cents=ledger.get_pool_spent(session, pool=pool),
        reserved_cents=ledger.get_pool_reserved(session, pool=pool),
        active_labelers=active,
        average_seconds=sum(all_seconds) / len(all_seconds) if all_seconds else None,
        banned_labelers=len(banned),
        labelers=sorted(people.values(), key=lambda r: (-r.suites, r.labeler_id)),
    )


def _stamp(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] if value else ""


def export_raw_answers(session: Session, *, requester: User, pool_id: int) -> str:
    """Every submitted answer as a TSV in Toloka's raw-results columns."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    base = get_settings().base_url.rstrip("/")
    rows = session.exec(
        select(Answer, Task, Assignment, MediaFile.original_name)
        .join(Task, Task.id == Answer.task_id)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .join(MediaFile, MediaFile.id == Task.media_id, isouter=True)
        .where(Answer.pool_id == pool.id, Assignment.status.in_(DONE_STATUSES))
        .order_by(Assignment.id, Task.position, Task.id)
    ).all()
    # INPUT:image is what the requester gave (URL or file name); MEDIA:url, when some
    # image is stored, is where the stored image is served from.
    with_media = any(task.image.startswith("/") for _, task, _, _ in rows)
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    # labelers saw the model's guess pre-selected: the results say so, with the guess
    project = session.get(Project, pool.project_id)
    preselected = pool.model_id is not None and project.preselect_model_answer
    writer.writerow(
        [
            *RAW_COLUMNS,
            *(["MEDIA:url"] if with_media else []),
            *(["MODEL:preselected"] if preselected else []),
        ]
    )
    for answer, task, assignment, original_name in rows:
        image = requester_image(task.input_values, task.image, original_name, base=base)
        stored = f"{base}{task.image}" if task.image.startswith("/") else ""
        row = [
            image,
            answer.first_value
            if task.kind == TaskKind.TRAINING and answer.first_value
            else answer.value,
            task.known_answer if task.kind != TaskKind.GENERAL and task.known_answer else "",
            public_id(answer.labeler_id),
            public_id(assignment.id),
            _stamp(assignment.created_at),
            _stamp(assignment.submitted_at),
        ]
        if with_media:
            row.append(stored)
        if preselected:
            row.append((task.model_answer or "") if task.kind == TaskKind.GENERAL else "")
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return out.getvalue()
