"""Submitting a suite: validate, store answers, pay on auto-accept, run the quality rules.

Idempotent: the assignment row is locked before its status is read, so a repeated submit
(double click, retry, two tabs) waits for the first and returns its result; the ledger's
unique constraint makes a second payment impossible anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import (
    Assignment,
    AssignmentStatus,
    Pool,
    Task,
    TaskKind,
    User,
)
from app.db.types import utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.services import answer_sets
from app.services.accounts.users import TokenLabeler
from app.services.labeling import sql
from app.services.labeling.dynamic import DynamicTerms, settle_tasks
from app.services.labeling.locks import bump_tasks, end_assignment, on_pg
from app.services.labeling.views import load_suite_tasks, suite_tasks
from app.services.money import ledger
from app.services.projects.pool_state import mark_closed
from app.services.quality import apply_rules_after_submit
from app.services.webhooks import events as webhooks

DONE = (AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED, AssignmentStatus.REJECTED)


@dataclass
class SubmitResult:
    assignment_id: int
    pool_id: int
    status: str
    reward_cents: int
    paid: bool
    repeated: bool = False

    def public(self) -> dict:
        return {
            "id": self.assignment_id,
            "pool_id": self.pool_id,
            "status": self.status,
            "reward": self.reward_cents / 100,
            "paid": self.paid,
            "repeated": self.repeated,
        }


@dataclass
class TrainingCheck:
    """``correct`` is None for tasks that are not checked (general and control alike)."""

    correct: bool | None
    hint: str | None = None


def ensure_fresh(session: Session, assignment: Assignment) -> None:
    """Expire an overdue active suite (commits) and refuse to go on."""
    if assignment.status == AssignmentStatus.ACTIVE and assignment.expires_at <= utcnow():
        end_assignment(session, assignment, AssignmentStatus.EXPIRED)
        session.commit()
    if assignment.status == AssignmentStatus.EXPIRED:
        raise Conflict("The time for this suite ran out; its tasks went back to the pool.")
    if assignment.status == AssignmentStatus.SKIPPED:
        raise Conflict("You skipped this suite.")


def _checked(raw, values: list[str], answer_type: str, allow_none: bool) -> str:
    """One answer as stored (``answer_sets.BadAnswer`` when it is not one): an option's
    value, or for several answers the canonical JSON list of the chosen values."""
    if answer_type == answer_sets.MULTIPLE:
        if isinstance(raw, dict):  # Toloka's field.checkbox-group output {value: true}
            raw = [key for key, chosen in raw.items() if chosen]
        return answer_sets.normalize(raw, values, allow_none=allow_none)
    value = "" if raw is None else str(raw).strip()
    if value not in values:
        raise answer_sets.BadAnswer(f"“{value}” is not an answer option (use {', '.join(values)})")
    return value


def _validate(
    answers: Mapping,
    tasks: list[tuple],
    values: list[str],
    *,
    by_position: bool,
    answer_type: str = answer_sets.SINGLE,
    allow_none: bool = False,
) -> dict[int, str]:
    """Answers keyed by task id, or ``ValidationFailed`` naming every bad task.

    With several answers a task's answer is a set (a list, a JSON list or a checkbox-group
    dict); it is stored as the canonical JSON list (``answer_sets``)."""
    key_of = {(pos if by_position else tid): tid for pos, tid, *_ in tasks}
    number_of = {tid: pos + 1 for pos, tid, *_ in tasks}
    given: dict[int, object] = {}
    errors: dict[str, str] = {}
    multiple = answer_type == answer_sets.MULTIPLE
    for raw_key, raw_value in answers.items():
        try:
            key = int(raw_key)
        except (TypeError, ValueError):
            key = None
        if key not in key_of:
            errors[f"answers.{raw_key}"] = f"This suite has no task {raw_key}."
            continue
        if multiple and raw_value is not None and not isinstance(raw_value, str):
            given[key_of[key]] = raw_value  # a list or dict: even an empty one is an answer
            continue
        value = "" if raw_value is None else str(raw_value).strip()
        if value:
            given[key_of[key]] = value
    checked: dict[int, str] = {}
    for pos, tid, *_ in tasks:
        key = pos if by_position else tid
        if tid not in given:
            errors[f"answers.{key}"] = f"Task {number_of[tid]}: choose an answer."
            continue
        try:
            checked[tid] = _checked(given[tid], values, answer_type, allow_none)
        except answer_sets.BadAnswer as exc:
            errors[f"answers.{key}"] = f"Task {number_of[tid]}: {exc}."
    if errors:
        missing = sum(1 for msg in errors.values() if msg.endswith("choose an answer."))
        message = (
            f"{missing} task(s) have no answer yet."
            if missing == len(errors)
            else "; ".join(errors.values())
        )
        raise ValidationFailed(message, errors=errors)
    return checked


@dataclass(frozen=True, slots=True)
class SubmitPool:
    """What submitting a suite needs of its pool (read with the locked suite)."""

    id: int
    owner_id: int
    overlap: int
    auto_accept: bool
    fee_percent: float
    has_rules: bool  # the pool or its project has quality rules
    dynamic: DynamicTerms | None = None  # dynamic overlap, when the pool has it


@dataclass(frozen=True, slots=True)
class LockedSuite:
    """The labeler's suite, row-locked for the submit, read in one statement (no ORM)."""

    id: int
    pool_id: int
    labeler_id: int
    status: str
    reward_cents: int
    created_at: datetime
    expires_at: datetime
    pool: SubmitPool
    values: list[str]  # the project's option values, in display order
    answer_type: str  # "single" or "multiple" (several answers: each answer a set)
    allow_none: bool  # several answers: the empty set ("none of these") is an answer
    tasks: list[tuple]  # what ``load_suite_tasks`` returns


def _lock_suite(session: Session, *, labeler_id: int, assignment_id: int) -> LockedSuite:
    """The labeler's suite (else ``NotFound``), locked on PostgreSQL, with its pool's terms,
    the option values and its tasks, in one statement."""
    statement = sql.pick(sql.SUBMIT_CONTEXT, on_pg(session))
    params = {"assignment_id": assignment_id, "labeler_id": labeler_id}
    rows = sql.rows(session.connection(), statement, params)
    if not rows:
        raise NotFound("No such suite.")
    first = rows[0]
    max_overlap, min_confidence, *model = first[12:19]
    dynamic = (
        DynamicTerms(max_overlap, min_confidence if min_confidence is not None else 1.0, *model)
        if max_overlap is not None
        else None
    )
    return LockedSuite(
        *first[:7],
        pool=SubmitPool(first[1], *first[7:12], dynamic=dynamic),
        values=list(first[19] or []),
        answer_type=first[20] or answer_sets.SINGLE,
        allow_none=bool(first[21]),
        tasks=suite_tasks(row[22:] for row in rows if row[23] is not None),
    )


def submit_assignment(
    session: Session,
    *,
    labeler: User | TokenLabeler,
    assignment_id: int,
    answers: Mapping,
    by_position: bool = False,
    first_values: Mapping | None = None,
) -> SubmitResult:
    """Store a suite's answers, pay on auto-accept, run the quality rules (commits once).

    ``answers`` maps task ids (or suite positions with ``by_position``) to option values.
    A repeated submit returns the first result: one set of answers, one payment.
    """
    suite = _lock_suite(session, labeler_id=labeler.id, assignment_id=assignment_id)
    if suite.status in DONE:
        result = SubmitResult(
            assignment_id=suite.id,
            pool_id=suite.pool_id,
            status=suite.status,
            reward_cents=suite.reward_cents,
            paid=ledger.is_paid(session, assignment=suite),
            repeated=True,
        )
        session.rollback()
        return result
    if suite.status != AssignmentStatus.ACTIVE or suite.expires_at <= utcnow():
        ensure_fresh(session, session.get(Assignment, suite.id))  # raises
    pool = suite.pool
    tasks = suite.tasks
    given = _validate(
        answers, tasks, suite.values, by_position=by_position,
        answer_type=suite.answer_type, allow_none=suite.allow_none,
    )  # fmt: skip
    firsts: dict[int, str] = {}
    if first_values:
        position_to_tid = {pos: tid for pos, tid, *_ in tasks}
        for key, value in first_values.items():
            try:
                tid = position_to_tid.get(int(key)) if by_position else int(key)
                first = _checked(value, suite.values, suite.answer_type, suite.allow_none)
            except (TypeError, ValueError):  # (BadAnswer is a ValueError)
                continue
            if tid in given:
                firsts[tid] = first

    now = utcnow()
    status = AssignmentStatus.ACCEPTED if pool.auto_accept else AssignmentStatus.SUBMITTED
    finished = {
        "status": status.value,
        "submitted_at": now,
        "reviewed_at": now if pool.auto_accept else None,
        "duration_seconds": max(0.0, (now - suite.created_at).total_seconds()),
    }
    store = _store_answers_pg if on_pg(session) else _store_answers
    bumped = store(session, suite, labeler, pool, given, firsts, finished)
    counts = [(tid, kind, overlap, n) for tid, kind, n, overlap in bumped]  # every suite task
    controls = [
        given[tid] == known for _, tid, kind, known, *_ in tasks if kind == TaskKind.CONTROL
    ]
    apply_rules_after_submit(
        session,
        assignment=suite,
        suite=counts,
        control_tally=(len(controls), sum(controls)),
        pool=pool,
    )
    if pool.has_rules:  # a rule may have rejected (or accepted) the suite just now
        status = session.get(Assignment, suite.id).status
    if pool.dynamic is not None:  # after the rules: the control accuracy is up to date
        bumped = settle_tasks(
            session.connection(),
            terms=pool.dynamic,
            pool_overlap=pool.overlap,
            owner_id=pool.owner_id,
            labeler_id=labeler.id,
            given=given,
            bumped=bumped,
            values=suite.values,
        )
    # paid last: the payment moves the pool's reservation total (a row every submit in the
    # pool writes), so its row lock is held only from here to the commit
    paid = False
    if pool.auto_accept:
        paid = ledger.pay_suite(session, pool=pool, assignment=suite)
    if any(kind == TaskKind.GENERAL and n >= (ov or pool.overlap) for _, kind, n, ov in bumped):
        _close_if_complete(session, pool=pool)
    webhooks.emit(
        session, pool_id=pool.id, event_type="ASSIGNMENT_SUBMITTED", assignment_id=suite.id
    )
    if status == AssignmentStatus.ACCEPTED:
        webhooks.emit(
            session, pool_id=pool.id, event_type="ASSIGNMENT_APPROVED", assignment_id=suite.id
        )
    session.commit()
    return SubmitResult(
        assignment_id=suite.id,
        pool_id=suite.pool_id,
        status=str(status),
        reward_cents=suite.reward_cents,
        paid=paid,
    )


def _store_answers(session, suite, labeler, pool, given, firsts, finished) -> list[tuple]:
    """Write the answers and the suite's new status, bump the submitted counters; returns
    (id, kind, submitted count, overlap) per task."""
    now = finished["submitted_at"]
    conn = session.connection()
    conn.execute(
        sql.INSERT_ANSWERS,
        [
            {
                "assignment_id": suite.id,
                "task_id": tid,
                "pool_id": pool.id,
                "labeler_id": labeler.id,
                "value": value,
                "first_value": firsts.get(tid, value),
                "excluded": False,
                "created_at": now,
            }
            for tid, value in given.items()
        ],
    )
    conn.execute(sql.FINISH_ASSIGNMENT, {"assignment_id": suite.id, **finished})
    return bump_tasks(session, given.keys(), "submitted_count", 1)


def _store_answers_pg(session, suite, labeler, pool, given, firsts, finished) -> list[tuple]:
    """The same in one statement (PostgreSQL)."""
    task_ids = list(given)
    rows = sql.rows(
        session.connection(),
        sql.SUBMIT_SUITE_PG,
        {
            "assignment_id": suite.id,
            "pool_id": pool.id,
            "labeler_id": labeler.id,
            "task_ids": task_ids,
            "answer_values": [given[tid] for tid in task_ids],
            "first_values": [firsts.get(tid, given[tid]) for tid in task_ids],
            "now": finished["submitted_at"],
            "status": finished["status"],
            "reviewed_at": finished["reviewed_at"],
            "duration_seconds": finished["duration_seconds"],
        },
    )
    return sorted(rows)


def _close_if_complete(session: Session, *, pool: Pool | SubmitPool) -> None:
    """Close the pool once every general task has its overlap of answers (flush only).

    On PostgreSQL two suites that finish the last tasks at the same moment would each see
    the other's task unfinished; so an unfinished task that another transaction is writing
    (row locked) does not count at first, and the final check runs under the pool's row
    lock, where the second of the two sees the first one's committed counts."""
    unfinished = (
        select(Task.id)
        .where(
            Task.pool_id == pool.id,
            Task.kind == TaskKind.GENERAL,
            Task.submitted_count < func.coalesce(Task.overlap, pool.overlap),
        )
        .limit(1)
    )
    pg = on_pg(session)
    first = unfinished.with_for_update(read=True, skip_locked=True) if pg else unfinished
    if session.exec(first).first() is not None:
        return
    query = select(Pool).where(Pool.id == pool.id).execution_options(populate_existing=True)
    if pg:
        query = query.with_for_update(key_share=True)
    locked = session.exec(query).one()
    if pg and session.exec(unfinished).first() is not None:
        return
    mark_closed(session, pool=locked, reason="COMPLETED")


def check_training_answer(
    session: Session, *, labeler: User, assignment_id: int, position: int, value: str
) -> TrainingCheck:
    """Right or wrong (with the hint) for a training task; nothing for any other task."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.labeler_id != labeler.id:
        raise NotFound("No such suite.")
    if assignment.status != AssignmentStatus.ACTIVE:
        return TrainingCheck(correct=None)
    for pos, _tid, kind, known, hint, _url in load_suite_tasks(
        session, assignment_id=assignment.id
    ):
        if pos == position:
            if kind != TaskKind.TRAINING or not known or not hint:
                return TrainingCheck(correct=None)
            wanted = answer_sets.decode(known)
            if wanted is not None:  # several answers: the same set
                try:
                    correct = set(answer_sets.parse(value)) == set(wanted)
                except answer_sets.BadAnswer:
                    correct = False
            else:
                correct = str(value).strip() == known
            return TrainingCheck(correct=correct, hint=None if correct else hint)
    raise NotFound("This suite has no such task.")
