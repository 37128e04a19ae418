"""A labeler's earnings: the submitted suites with what each paid, searched, sorted and paged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, literal_column
from sqlmodel import Session, col, select

from app.db.models import (
    Assignment,
    AssignmentStatus,
    LedgerEntry,
    LedgerKind,
    Pool,
    Project,
    User,
)
from app.services.listing import ListParams, ListSpec, Page, paginate

EARNED_STATUSES = (AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED, AssignmentStatus.REJECTED)


@dataclass
class EarningRow:
    """One submitted suite and what it paid."""

    assignment_id: int
    project_name: str
    pool_name: str
    status: str
    submitted_at: datetime | None
    paid_cents: int


def _paid(labeler: User):
    return (
        select(LedgerEntry.assignment_id, func.sum(LedgerEntry.amount_cents).label("cents"))
        .where(LedgerEntry.user_id == labeler.id, LedgerEntry.kind == LedgerKind.EARNING)
        .group_by(LedgerEntry.assignment_id)
        .subquery("paid")
    )


EARNING_LIST = ListSpec(
    sorts={
        "submitted": (col(Assignment.submitted_at), col(Assignment.id)),
        "project": func.lower(col(Project.name)),
        "pool": func.lower(col(Pool.name)),
        "status": col(Assignment.status),
        "paid": literal_column("paid_cents"),
    },
    default_sort="submitted",
    default_dir="desc",
    first_dirs={"paid": "desc"},
    search=(col(Project.name), col(Pool.name)),
    tiebreak=(col(Assignment.id),),
)
"""Submitted suites, newest first; searched in project and pool names."""


def page_earned_suites(session: Session, *, labeler: User, params: ListParams) -> Page:
    """One page of the labeler's submitted suites with what each paid."""
    paid = _paid(labeler)
    query = (
        select(
            Assignment.id,
            Project.name,
            Pool.name,
            Assignment.status,
            Assignment.submitted_at,
            func.coalesce(paid.c.cents, 0).label("paid_cents"),
        )
        .join(Pool, col(Pool.id) == Assignment.pool_id)
        .join(Project, col(Project.id) == Pool.project_id)
        .outerjoin(paid, paid.c.assignment_id == Assignment.id)
        .where(Assignment.labeler_id == labeler.id, col(Assignment.status).in_(EARNED_STATUSES))
    )
    return paginate(session, query, spec=EARNING_LIST, params=params, row=lambda r: EarningRow(*r))
