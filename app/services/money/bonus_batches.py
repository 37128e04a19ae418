"""Bonuses in a batch as one idempotent operation (Toloka's ``USER_BONUS.BATCH_CREATE``).

The operation's row (a job with the client's ``operation_id``) and every bonus it pays are
written in one transaction. Two uniqueness constraints make a retry harmless: the job's
``external_id`` and each bonus's ``(operation_id, item_index)``. A retried or raced
request with the same id fails on insert (``OperationExists``) and pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.db.models import Job, JobStatus, User
from app.db.types import utcnow
from app.errors import CrowdlabError, ValidationFailed
from app.services.jobs.operations import KIND, OperationExists
from app.services.money.bonuses import Bonus, as_bonus, pay_bonus_row

OPERATION_TYPE = "USER_BONUS.BATCH_CREATE"


@dataclass
class BonusItem:
    """One requested bonus; ``error`` is set when the request could not even be read."""

    labeler_id: int | None
    amount_cents: int | None
    title: str = ""
    message: str = ""
    private_comment: str = ""
    assignment_id: int | None = None
    error: CrowdlabError | None = None


@dataclass
class BonusBatch:
    """What a batch did: bonuses paid and errors, by item index; the operation row."""

    granted: dict[int, Bonus] = field(default_factory=dict)
    errors: dict[int, CrowdlabError] = field(default_factory=dict)
    operation: Job | None = None


LogItem = Callable[[int, Bonus | None, CrowdlabError | None], dict]


def _claim(session: Session, *, requester: User, operation_id: str, skip_invalid: bool) -> Job:
    now = utcnow()
    job = Job(
        kind=KIND,
        owner_id=requester.id,
        external_id=operation_id,
        status=JobStatus.RUNNING,
        payload={
            "operation_type": OPERATION_TYPE,
            "parameters": {"skip_invalid_items": skip_invalid},
        },
        created_at=now,
        started_at=now,
    )
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:
        session.rollback()
        raise OperationExists(
            f"An operation with id {operation_id} already exists; nothing was paid again."
        ) from None
    return job


def _pay(session: Session, *, requester: User, item: BonusItem, operation_id, index) -> Bonus:
    if item.error is not None:
        raise item.error
    if item.labeler_id is None or item.amount_cents is None:
        raise ValidationFailed(
            "user_id and amount are required.", errors={"user_id": "VALUE_REQUIRED"}
        )
    with session.begin_nested():
        row = pay_bonus_row(
            session,
            requester=requester,
            labeler_id=item.labeler_id,
            amount_cents=item.amount_cents,
            title=item.title,
            message=item.message,
            private_comment=item.private_comment,
            assignment_id=item.assignment_id,
            operation_id=operation_id,
            item_index=index if operation_id else None,
        )
    return as_bonus(row)


def grant_bonuses(
    session: Session,
    *,
    requester: User,
    items: Sequence[BonusItem],
    operation_id: str | None = None,
    record: bool = True,
    skip_invalid: bool = False,
    log_item: LogItem | None = None,
) -> BonusBatch:
    """Pay a batch of bonuses once per ``operation_id``.

    Without ``skip_invalid`` one refused item (bad amount, no accepted work, short
    balance...) refuses the batch: its error is raised, nothing is paid and nothing is
    recorded, so the same ``operation_id`` can be sent again once it is fixed. With it,
    every valid item is paid and the others are reported. ``record`` keeps a finished
    operation (its log built by ``log_item``) that ``GET /operations/{id}`` reads back.
    A used ``operation_id`` raises ``OperationExists`` and pays nothing.
    """
    if not items:
        raise ValidationFailed("Send at least one bonus.", errors={"request": "Empty."})
    job = None
    if operation_id:
        job = _claim(
            session, requester=requester, operation_id=operation_id, skip_invalid=skip_invalid
        )
    batch = BonusBatch()
    for index, item in enumerate(items):
        try:
            batch.granted[index] = _pay(
                session, requester=requester, item=item, operation_id=operation_id, index=index
            )
        except CrowdlabError as exc:
            if not skip_invalid:
                session.rollback()
                if len(items) > 1 and isinstance(exc, ValidationFailed):
                    raise ValidationFailed(
                        f"Bonus {index}: {exc.message}",
                        errors={f"{index}.{k}": v for k, v in (exc.errors or {}).items()},
                    ) from None
                raise
            batch.errors[index] = exc
    if record:
        if job is None:
            job = Job(
                kind=KIND,
                owner_id=requester.id,
                payload={
                    "operation_type": OPERATION_TYPE,
                    "parameters": {"skip_invalid_items": skip_invalid},
                },
                started_at=utcnow(),
            )
        job.status = JobStatus.SUCCEEDED
        job.progress = 1.0
        job.finished_at = utcnow()
        paid, failed = len(batch.granted), len(batch.errors)
        job.result = {
            "total_count": len(items),
            "valid_count": paid,
            "not_valid_count": failed,
            "success_count": paid,
            "failed_count": failed,
            "log": [
                log_item(i, batch.granted.get(i), batch.errors.get(i)) if log_item else {}
                for i in range(len(items))
            ],
        }
        session.add(job)
    session.commit()
    if job is not None:
        session.refresh(job)
        batch.operation = job
    return batch
