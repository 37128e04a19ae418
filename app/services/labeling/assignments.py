"""The assignment engine: hand out task suites, skip, expire; submit lives in submissions.

Concurrency: on PostgreSQL candidate general tasks are locked with
``FOR NO KEY UPDATE SKIP LOCKED`` (so two labelers never take a task's last slot and never
wait on each other), the labeler's row is locked while a suite is chosen (one active suite
per pool even on a double click) and an assignment row is locked before it changes state
(a repeated submit waits, then sees it was submitted). Task counters are always changed
in task-id order. On SQLite the write session's ``BEGIN IMMEDIATE`` serialises writers.

Speed: the statements are built once (``suite_sql``); on PostgreSQL a new suite (the
assignment, its tasks and the taken counters) is written in one statement.
bench/labeling_load.py drives this path over HTTP.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, select

from app.db.models import Assignment, AssignmentStatus, Ban, Pool, PoolStatus, TaskKind, User
from app.db.types import utcnow
from app.errors import Conflict, InsufficientFunds, NotFound
from app.services.accounts.users import TokenLabeler
from app.services.labeling import sql
from app.services.labeling.available import PoolTerms, check_labeler_fits
from app.services.labeling.captchas import require_captcha
from app.services.labeling.locks import end_assignment, lock_own, on_pg, release_slots
from app.services.labeling.submissions import (  # noqa: F401  (the engine's public surface)
    SubmitResult,
    TrainingCheck,
    check_training_answer,
    submit_assignment,
)
from app.services.labeling.views import (
    OptionView,
    ProjectView,
    SuiteHead,
    SuiteView,
    build_view,
    image_url,
)
from app.services.money import ledger
from app.services.quality import apply_rules_after_skip
from app.services.webhooks import events as webhooks


class NoSuiteAvailable(Conflict):
    """The pool has no task left that this labeler may take."""

    code = "NO_TASKS_AVAILABLE"


class PoolBudgetUsedUp(NoSuiteAvailable):
    """The pool has tasks, but its reservation does not cover another suite (the requester
    is asked on the pool's page to add to it)."""


def _pick_fixed_suite(conn, *, labeler_id: int, pool: PoolTerms, pg: bool) -> list[tuple]:
    """The tasks of the first requester-composed suite the labeler may take (see
    ``pick_tasks`` for the row); [] when none is left.

    PostgreSQL: the suite's row is locked, skipping suites other requests are handing out
    and, when that finds none, waiting for them; a fresh read after the lock sees what the
    request that held it committed (a suite that filled up meanwhile is passed over)."""
    statements = sql.PICK_FIXED_SUITE[1:] if pg else sql.PICK_FIXED_SUITE[:1]
    for statement in statements:
        params = {"pool_id": pool.id, "labeler_id": labeler_id, "overlap": pool.overlap}
        params["after"] = 0
        while found := sql.rows(conn, statement, params):
            suite = {"suite_id": found[0][0], "overlap": pool.overlap}
            if not pg or not sql.rows(conn, sql.SUITE_STILL_FREE, suite)[0][0]:
                return sql.rows(conn, sql.COMPOSED_SUITE_TASKS, suite)
            params["after"] = suite["suite_id"]
    return []


def pick_tasks(conn, *, labeler_id: int, pool: PoolTerms, pg: bool) -> list[tuple]:
    """(id, position, kind, hint, image, sha256, content type) per picked task: general
    tasks with a free slot that the labeler never had, and control / training tasks the
    labeler has had least often, at random (seen ones again only alongside general tasks)."""
    if pool.fixed_suites:
        return _pick_fixed_suite(conn, labeler_id=labeler_id, pool=pool, pg=pg)
    reuse = pool.general_per_suite > 0
    params = {
        "pool_id": pool.id,
        "labeler_id": labeler_id,
        "overlap": pool.overlap,
        "n": pool.general_per_suite,
        "n_control": pool.control_per_suite,
        "n_training": pool.training_per_suite,
        "reuse": reuse,
        "r": random.random(),
        # a suite of control / training tasks alone must find any one never had
        "window": sql.SEEN_WINDOW if reuse else 2**31 - 1,
    }
    order = bool(pool.keep_task_order) or ("uncertain" if pool.max_overlap else False)
    statement = sql.pick_suite(
        order, control=pool.control_per_suite > 0, training=pool.training_per_suite > 0, pg=pg
    )
    return sql.rows(conn, statement, params)


@dataclass
class _TakeContext:
    pool: PoolTerms
    ban_id: int | None  # the ban that keeps the labeler out of the pool, if any
    active: list[tuple[int, datetime]]  # the labeler's active suites there: (id, expires at)
    project: ProjectView


def _take_context(conn, *, labeler_id: int, pool_id: int, now: datetime) -> _TakeContext:
    """What taking a suite needs to know, in one statement; ``NotFound`` unless open."""
    found = sql.rows(
        conn, sql.TAKE_CONTEXT, {"pool_id": pool_id, "labeler_id": labeler_id, "now": now}
    )
    # a row: the pool's terms, the ban id, the active suite's id and expiry, the project's
    # name, question, instructions, answer type and "none of these", an option's label,
    # value and hotkey
    ban, suite, project, option = (len(sql.POOL_TERMS) + k for k in (0, 1, 3, 8))
    pool = PoolTerms(*found[0][:ban]) if found else None
    if pool is not None and pool.status == PoolStatus.CLOSED:  # e.g. its last task just done
        raise NoSuiteAvailable("This pool is finished: there are no more tasks in it.")
    if pool is None or pool.status != PoolStatus.OPEN:
        raise NotFound("This pool does not exist or is no longer open.")
    first = found[0]
    active = dict.fromkeys(  # in id order, each once (a suite has a row per option)
        (row[suite], row[suite + 1]) for row in found if row[suite] is not None
    )
    options = [  # the rows of the first suite (or of none) hold each option once
        OptionView(*row[option:])
        for row in found
        if row[suite] == first[suite] and row[option + 1] is not None
    ]
    return _TakeContext(
        pool=pool,
        ban_id=first[ban],
        active=list(active),
        project=ProjectView(*first[project:option], options),
    )


def assign_next_suite(session: Session, *, labeler: User | TokenLabeler, pool_id: int) -> SuiteView:
    """The labeler's active suite in the open pool, or a new one (commits)."""
    now = utcnow()
    pg = on_pg(session)
    conn = session.connection()
    if pg:  # one chooser per labeler at a time: no two active suites in a pool
        sql.rows(conn, sql.LOCK_LABELER, {"labeler_id": labeler.id})
    context = _take_context(conn, labeler_id=labeler.id, pool_id=pool_id, now=now)
    pool, project = context.pool, context.project
    ban = session.get(Ban, context.ban_id) if context.ban_id is not None else None
    check_labeler_fits(session, labeler=labeler, pool=pool, ban=ban)
    for assignment_id, expires_at in context.active:
        assignment = session.get(Assignment, assignment_id)
        if expires_at > now:
            view = build_view(session, assignment=assignment, pool=pool, project=project)
            session.commit()
            return view
        end_assignment(session, assignment, AssignmentStatus.EXPIRED)
    if pool.captcha_frequency:
        try:
            require_captcha(
                session, pool_id=pool.id, frequency=pool.captcha_frequency, labeler_id=labeler.id
            )
        except Conflict:
            session.commit()  # keeps the expiry above
            raise

    picked = pick_tasks(conn, labeler_id=labeler.id, pool=pool, pg=pg)
    general = [row for row in picked if row[2] == TaskKind.GENERAL]
    if (pool.general_per_suite > 0 and not pool.fixed_suites and not general) or not picked:
        session.commit()  # keeps the expiry above
        raise NoSuiteAvailable("There are no more tasks for you in this pool.")
    if pool.keep_task_order or pool.fixed_suites:  # a composed suite keeps its order
        picked.sort(key=lambda item: (item[1], item[0]))
    else:
        random.shuffle(picked)
    expires_at = now + timedelta(seconds=pool.time_limit_seconds)
    row = {
        "pool_id": pool.id,
        "labeler_id": labeler.id,
        "reward_cents": pool.reward_cents,
        "created_at": now,
        "expires_at": expires_at,
    }
    general_ids = [task_id for task_id, *_ in general]
    if pg:
        [(assignment_id,)] = sql.rows(
            conn,
            sql.CREATE_SUITE_PG,
            {
                **row,
                "task_ids": [task_id for task_id, *_ in picked],
                "positions": list(range(len(picked))),
                "general_ids": general_ids,
            },
        )
    else:
        row["status"] = AssignmentStatus.ACTIVE.value
        assignment_id = conn.execute(sql.INSERT_ASSIGNMENT, row).scalar_one()
        conn.execute(
            sql.INSERT_SUITE_TASKS,
            [
                {
                    "assignment_id": assignment_id,
                    "task_id": task_id,
                    "position": position,
                    "labeler_id": labeler.id,
                }
                for position, (task_id, *_) in enumerate(picked)
            ],
        )
        if general_ids:
            conn.execute(sql.BUMP["taken_count", False], {"ids": general_ids, "delta": 1})
    inserted = SuiteHead(  # the row just written, for the view
        assignment_id, AssignmentStatus.ACTIVE.value, expires_at, pool.reward_cents
    )
    tasks = [
        (position, tid, kind, None, hint, image_url(image, sha, ctype))
        for position, (tid, _, kind, hint, image, sha, ctype) in enumerate(picked)
    ]
    view = build_view(session, assignment=inserted, pool=pool, tasks=tasks, project=project)
    # Every suite handed out can be paid: the pool's reservation must cover it and every other
    # suite still out. Checked last, so that the pool's row (locked on PostgreSQL, as a
    # payment locks it) is held only from here to the commit.
    try:
        ledger.ensure_suite_covered(
            session, pool_id=pool.id, reward_cents=pool.reward_cents, counted=True
        )
    except InsufficientFunds:
        session.rollback()  # the suite was never handed out
        raise PoolBudgetUsedUp(
            "This pool's budget is used up for now: no new suites until the requester "
            "adds to it. Try another pool."
        ) from None
    webhooks.emit(  # one indexed look-up; a delivery only for a subscribed pool
        session, pool_id=pool.id, event_type="ASSIGNMENT_CREATED", assignment_id=assignment_id
    )
    session.commit()
    return view


def get_assignment(session: Session, *, labeler: User, assignment_id: int) -> SuiteView:
    """One of the labeler's suites (an overdue one is expired on the way)."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.labeler_id != labeler.id:
        raise NotFound("No such suite.")
    if assignment.status == AssignmentStatus.ACTIVE and assignment.expires_at <= utcnow():
        assignment = lock_own(session, labeler=labeler, assignment_id=assignment_id)
        if assignment.status == AssignmentStatus.ACTIVE:
            end_assignment(session, assignment, AssignmentStatus.EXPIRED)
        session.commit()
    return build_view(session, assignment=assignment, pool=session.get(Pool, assignment.pool_id))


def list_assignments(
    session: Session,
    *,
    labeler: User,
    pool_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[Assignment]:
    """The labeler's suites, newest first."""
    query = select(Assignment).where(Assignment.labeler_id == labeler.id)
    if pool_id is not None:
        query = query.where(Assignment.pool_id == pool_id)
    if status:
        query = query.where(Assignment.status == status)
    return list(session.exec(query.order_by(Assignment.id.desc()).limit(limit)))


def skip_assignment(session: Session, *, labeler: User, assignment_id: int) -> Assignment:
    """Give an active suite back at once (idempotent for a skipped one)."""
    assignment = lock_own(session, labeler=labeler, assignment_id=assignment_id)
    if assignment.status == AssignmentStatus.ACTIVE:
        end_assignment(session, assignment, AssignmentStatus.SKIPPED)
        apply_rules_after_skip(session, assignment=assignment)
        session.commit()
    elif assignment.status != AssignmentStatus.SKIPPED:
        session.rollback()
        raise Conflict(f"This suite is {assignment.status} and cannot be skipped.")
    return assignment


def expire_overdue(session: Session, *, batch: int = 500) -> int:
    """Expire every active suite past its time limit and free its slots (commits)."""
    total = 0
    while True:
        query = (
            select(Assignment.id)
            .where(Assignment.status == AssignmentStatus.ACTIVE, Assignment.expires_at <= utcnow())
            .order_by(Assignment.id)
            .limit(batch)
        )
        if on_pg(session):
            query = query.with_for_update(skip_locked=True, key_share=True)
        ids = list(session.exec(query).all())
        if ids:
            session.execute(
                update(Assignment.__table__)
                .where(Assignment.id.in_(ids))
                .values(status=AssignmentStatus.EXPIRED)
            )
            release_slots(session, ids)
            for pool_id, assignment_id in webhooks.subscribed_assignments(
                session, ids, event_type="ASSIGNMENT_EXPIRED"
            ):
                webhooks.emit(
                    session,
                    pool_id=pool_id,
                    event_type="ASSIGNMENT_EXPIRED",
                    assignment_id=assignment_id,
                )
        session.commit()
        total += len(ids)
        if len(ids) < batch:
            return total
