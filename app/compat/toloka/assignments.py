"""Toloka's assignments over Crowdlab's suites: the JSON toloka-kit reads, the paged search
and the results TSV (``get_assignments_df``). A Crowdlab assignment is both Toloka's
assignment and its task suite, so ``task_suite_id`` is the assignment's id."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from aggregation.tsv import spreadsheet_safe
from app.compat.toloka.shapes import absolute_input, iso
from app.db.models import (
    Answer,
    Assignment,
    AssignmentStatus,
    AssignmentTask,
    Pool,
    Task,
    TaskKind,
    User,
)
from app.errors import NotFound, ValidationFailed
from app.services import answer_sets
from app.services.projects.pools import get_pool
from app.services.projects.progress import public_id
from app.settings import get_settings

# Toloka's TSV writes ACCEPTED as APPROVED.
TSV_STATUS = {AssignmentStatus.ACCEPTED: "APPROVED"}
TSV_FIELDS = (
    "link",
    "assignment_id",
    "task_id",
    "task_suite_id",
    "worker_id",
    "status",
    "started",
    "submitted",
    "accepted",
    "rejected",
    "skipped",
    "expired",
    "reward",
)
DEFAULT_TSV_FIELDS = ("link", "assignment_id", "worker_id", "status", "started")


def _assignment_tasks(session: Session, ids: Sequence[int]) -> dict[int, list[tuple[Task, str]]]:
    """Each assignment's tasks in suite order with the answer given (``None`` if none)."""
    if not ids:
        return {}
    rows = session.exec(
        select(AssignmentTask.assignment_id, Task, Answer.value)
        .join(Task, Task.id == AssignmentTask.task_id)
        .outerjoin(
            Answer,
            (Answer.assignment_id == AssignmentTask.assignment_id)
            & (Answer.task_id == AssignmentTask.task_id),
        )
        .where(AssignmentTask.assignment_id.in_(list(ids)))
        .order_by(AssignmentTask.assignment_id, AssignmentTask.position)
    ).all()
    out: dict[int, list[tuple[Task, str]]] = {}
    for assignment_id, task, value in rows:
        out.setdefault(assignment_id, []).append((task, value))
    return out


def _task_in_suite(task: Task) -> dict[str, Any]:
    item = {
        "id": public_id(task.id),
        "pool_id": public_id(task.pool_id),
        "input_values": absolute_input(task.input_values, task.image),
    }
    if task.kind != TaskKind.GENERAL and task.known_answer is not None:
        item["known_solutions"] = [
            {
                "output_values": {"result": answer_sets.output(task.known_answer)},
                "correctness_weight": 1,
            }
        ]
        if task.hint:
            item["message_on_unknown_solution"] = task.hint
    return item


def assignments_json(
    session: Session, assignments: Sequence[Assignment], *, requester: User
) -> list[dict]:
    """Assignments as Toloka returns them; ``tasks[i]`` is answered by ``solutions[i]``."""
    tasks = _assignment_tasks(session, [a.id for a in assignments])
    out = []
    for a in assignments:
        status = a.status.upper()
        pairs = tasks.get(a.id, [])
        answered = a.status not in (AssignmentStatus.ACTIVE, AssignmentStatus.EXPIRED)
        out.append(
            {
                "id": public_id(a.id),
                "task_suite_id": public_id(a.id),
                "pool_id": public_id(a.pool_id),
                "user_id": public_id(a.labeler_id),
                "status": status,
                "reward": round(a.reward_cents / 100, 2),
                "bonus_ids": [],
                "mixed": True,
                "automerged": False,
                "created": iso(a.created_at),
                "submitted": iso(a.submitted_at),
                "accepted": iso(a.reviewed_at) if status == "ACCEPTED" else None,
                "rejected": iso(a.reviewed_at) if status == "REJECTED" else None,
                "skipped": None,
                "expired": iso(a.expires_at) if status == "EXPIRED" else None,
                "public_comment": a.review_comment,
                "tasks": [_task_in_suite(task) for task, _ in pairs],
                "solutions": (
                    [
                        {
                            "output_values": {"result": answer_sets.output(value)}
                            if value is not None
                            else {}
                        }
                        for _, value in pairs
                    ]
                    if answered
                    else None
                ),
                "owner": {"id": public_id(requester.id), "myself": True},
            }
        )
    return out


_SORTABLE = {
    "id": Assignment.id,
    "created": Assignment.created_at,
    "submitted": Assignment.submitted_at,
    "accepted": Assignment.reviewed_at,
    "rejected": Assignment.reviewed_at,
}


def parse_statuses(raw: str | None, *, field: str = "status") -> list[str]:
    """``SUBMITTED,ACCEPTED`` (``APPROVED`` accepted as ``ACCEPTED``) → Crowdlab statuses."""
    out = []
    for part in (raw or "").split(","):
        name = part.strip().upper()
        if not name:
            continue
        name = "ACCEPTED" if name == "APPROVED" else name
        if name.lower() not in set(AssignmentStatus):
            choices = "ACTIVE, SUBMITTED, ACCEPTED, REJECTED, SKIPPED, EXPIRED"
            raise ValidationFailed(
                f"Unknown status {part!r}.", errors={field: f"One of {choices}."}
            )
        out.append(name.lower())
    return out


def search_assignments(
    session: Session,
    *,
    requester: User,
    statuses: Sequence[str] = (),
    pool_id: int | None = None,
    task_id: int | None = None,
    task_suite_id: int | None = None,
    user_id: int | None = None,
    bounds: dict[str, Any] | None = None,
    sort: str = "id",
    limit: int = 50,
) -> tuple[list[Assignment], bool]:
    """The requester's assignments, filtered and sorted (``bounds``: ``{"id_gt": 5, ...}``)."""
    descending = sort.strip().startswith("-")
    key = sort.strip().lstrip("-+") or "id"
    if key not in _SORTABLE:
        raise ValidationFailed(
            "Unsupported sort.", errors={"sort": f"One of {', '.join(_SORTABLE)}."}
        )
    query = (
        select(Assignment)
        .join(Pool, Pool.id == Assignment.pool_id)
        .where(Pool.owner_id == requester.id)
    )
    if statuses:
        query = query.where(Assignment.status.in_(list(statuses)))
    if pool_id is not None:
        query = query.where(Assignment.pool_id == pool_id)
    if task_suite_id is not None:
        query = query.where(Assignment.id == task_suite_id)
    if user_id is not None:
        query = query.where(Assignment.labeler_id == user_id)
    if task_id is not None:
        query = query.where(
            Assignment.id.in_(
                select(AssignmentTask.assignment_id).where(AssignmentTask.task_id == task_id)
            )
        )
    ops = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}
    for name, value in (bounds or {}).items():
        if value is None:
            continue
        field, _, op = name.rpartition("_")
        query = query.where(getattr(_SORTABLE[field], ops[op])(value))
    column = _SORTABLE[key]
    order = [column.desc(), Assignment.id.desc()] if descending else [column, Assignment.id]
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)).all())
    return rows[:limit], len(rows) > limit


def get_assignment(session: Session, *, requester: User, assignment_id: int) -> Assignment:
    """One assignment in one of the requester's pools (someone else's → NotFound)."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound("No such assignment.")
    pool = session.get(Pool, assignment.pool_id)
    if pool is None or pool.owner_id != requester.id:
        raise NotFound("No such assignment.")
    return assignment


# ---------------------------------------------------------------- assignments TSV


def _tsv_field(name: str, assignment: Assignment, task: Task, link: str) -> str:
    status = TSV_STATUS.get(assignment.status, assignment.status.upper())
    values = {
        "link": link,
        "assignment_id": public_id(assignment.id),
        "task_id": public_id(task.id),
        "task_suite_id": public_id(assignment.id),
        "worker_id": public_id(assignment.labeler_id),
        "status": status,
        "started": iso(assignment.created_at),
        "submitted": iso(assignment.submitted_at),
        "accepted": iso(assignment.reviewed_at) if status == "APPROVED" else None,
        "rejected": iso(assignment.reviewed_at) if status == "REJECTED" else None,
        "skipped": None,
        "expired": iso(assignment.expires_at) if status == "EXPIRED" else None,
        "reward": f"{assignment.reward_cents / 100:.2f}",
    }
    return values[name] or ""


def parse_tsv_fields(raw: str | None) -> list[str]:
    """``ASSIGNMENT:worker_id,ASSIGNMENT:status`` → ``["worker_id", "status"]``."""
    if not raw:
        return list(DEFAULT_TSV_FIELDS)
    out = []
    for part in raw.split(","):
        name = part.strip().removeprefix("ASSIGNMENT:")
        if not name:
            continue
        if name not in TSV_FIELDS:
            raise ValidationFailed(
                f"Unknown field {part!r}.",
                errors={"field": "Use ASSIGNMENT:" + ", ASSIGNMENT:".join(TSV_FIELDS)},
            )
        out.append(name)
    return out


def assignments_tsv(
    session: Session,
    *,
    requester: User,
    pool_id: int,
    statuses: Sequence[str],
    fields: Sequence[str],
    started_from: datetime | None = None,
    started_to: datetime | None = None,
) -> str:
    """One row per task per assignment: INPUT, OUTPUT, GOLDEN, HINT, then ASSIGNMENT columns."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    query = select(Assignment).where(
        Assignment.pool_id == pool.id, Assignment.status.in_(list(statuses))
    )
    if started_from is not None:
        query = query.where(Assignment.created_at >= started_from)
    if started_to is not None:
        query = query.where(Assignment.created_at <= started_to)
    assignments = list(session.exec(query.order_by(Assignment.id)).all())
    tasks = _assignment_tasks(session, [a.id for a in assignments])
    input_keys: list[str] = ["image"]
    for pairs in tasks.values():
        for task, _ in pairs:
            for key in task.input_values or {}:
                if key not in input_keys:
                    input_keys.append(key)
    link = get_settings().base_url.rstrip("/") + f"/requester/pools/{pool.id}"
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(
        [f"INPUT:{k}" for k in input_keys]
        + ["OUTPUT:result", "GOLDEN:result", "HINT:text"]
        + [f"ASSIGNMENT:{f}" for f in fields]
    )
    for assignment in assignments:
        for task, value in tasks.get(assignment.id, []):
            values = absolute_input(task.input_values, task.image)
            golden = task.known_answer if task.kind != TaskKind.GENERAL else None
            row = (
                [values.get(k, "") for k in input_keys]
                + [value or "", golden or "", (task.hint or "") if golden else ""]
                + [_tsv_field(f, assignment, task, link) for f in fields]
            )
            writer.writerow([spreadsheet_safe(cell) for cell in row])
    return out.getvalue()
