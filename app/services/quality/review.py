"""Manual review: accept or reject whole suites, by hand, by file, or automatically.

With ``pool.auto_accept`` off, submitted suites stay SUBMITTED (their money reserved)
until the requester accepts (pays, once) or rejects (not paid; a comment the labeler
sees; the tasks' slots go back to other labelers). Unreviewed suites are accepted when
the review period ends.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from aggregation.tsv import from_spreadsheet_safe, spreadsheet_safe
from app.db.models import (
    Answer,
    Assignment,
    AssignmentStatus,
    AssignmentTask,
    Pool,
    PoolStatus,
    Task,
    User,
)
from app.db.types import utcnow
from app.errors import Conflict, NotFound, UploadRejected, ValidationFailed
from app.services.money import ledger
from app.services.quality import events, overlap
from app.services.webhooks import events as webhooks

TSV_COLUMNS = [
    "ASSIGNMENT:assignment_id",
    "ASSIGNMENT:worker_id",
    "INPUT:image",
    "OUTPUT:result",
    "GOLDEN:result",
    "ACCEPT:verdict",
    "ACCEPT:comment",
]


class InappropriateStatus(Conflict):
    """The suite's status does not allow this review (Toloka's error code)."""

    code = "INAPPROPRIATE_STATUS"


def _answers(session: Session, assignment: Assignment) -> list[Answer]:
    return list(session.exec(select(Answer).where(Answer.assignment_id == assignment.id)))


def _settle_if_closed(session: Session, *, pool: Pool) -> None:
    """Once a closed pool has nothing left to review, release its unspent reservation."""
    if pool.status != PoolStatus.CLOSED:
        return
    waiting = session.exec(
        select(func.count(Assignment.id)).where(
            Assignment.pool_id == pool.id,
            Assignment.status.in_([AssignmentStatus.SUBMITTED, AssignmentStatus.ACTIVE]),
        )
    ).one()
    if not waiting:
        ledger.release_pool_reservation(session, pool=pool, memo="Released after review")


def accept_suite(
    session: Session, *, pool: Pool, assignment: Assignment, comment: str = "", now=None
) -> bool:
    """Accept and pay a suite (flush only); False when it was already accepted."""
    if assignment.status == AssignmentStatus.ACCEPTED:
        return False
    if assignment.status not in (AssignmentStatus.SUBMITTED, AssignmentStatus.REJECTED):
        raise InappropriateStatus(f"A {assignment.status} suite cannot be accepted.")
    if assignment.status == AssignmentStatus.REJECTED:
        overlap.retake(session, pool=pool, answers=_answers(session, assignment))
    assignment.status = AssignmentStatus.ACCEPTED
    assignment.reviewed_at = now or utcnow()
    assignment.review_comment = (comment or "").strip()[:2000] or None
    session.add(assignment)
    session.flush()
    ledger.pay_suite(session, pool=pool, assignment=assignment)
    webhooks.emit(
        session, pool_id=pool.id, event_type="ASSIGNMENT_APPROVED", assignment_id=assignment.id
    )
    return True


def reject_suite(session: Session, *, pool: Pool, assignment: Assignment, comment: str) -> bool:
    """Reject a suite (flush only): not paid, its tasks re-issued; False if already rejected."""
    if assignment.status == AssignmentStatus.REJECTED:
        return False
    if assignment.status != AssignmentStatus.SUBMITTED:
        raise InappropriateStatus(f"A {assignment.status} suite cannot be rejected.")
    comment = (comment or "").strip()
    if not comment:
        raise ValidationFailed(
            "Tell the labeler why the suite was rejected.", errors={"comment": "Required."}
        )
    assignment.status = AssignmentStatus.REJECTED
    assignment.reviewed_at = utcnow()
    assignment.review_comment = comment[:2000]
    session.add(assignment)
    freed = overlap.give_back(session, _answers(session, assignment))
    overlap.reopen_if_completed(session, pool=pool, slots=freed)
    webhooks.emit(
        session, pool_id=pool.id, event_type="ASSIGNMENT_REJECTED", assignment_id=assignment.id
    )
    return True


def get_reviewable(
    session: Session, *, requester: User, assignment_id: int
) -> tuple[Assignment, Pool]:
    """A suite in one of the requester's pools, with its pool."""
    assignment = session.get(Assignment, assignment_id)
    pool = session.get(Pool, assignment.pool_id) if assignment else None
    if assignment is None or pool is None or pool.owner_id != requester.id:
        raise NotFound("No such assignment.")
    return assignment, pool


def _after_review(session: Session, *, pool: Pool, labeler_ids: set[int]) -> None:
    for labeler_id in sorted(labeler_ids):
        events.suites_reviewed(session, pool=pool, labeler_id=labeler_id)
    _settle_if_closed(session, pool=pool)


def accept_assignment(
    session: Session, *, requester: User, assignment_id: int, comment: str = ""
) -> Assignment:
    """Accept a submitted (or rejected) suite and pay it."""
    assignment, pool = get_reviewable(session, requester=requester, assignment_id=assignment_id)
    if accept_suite(session, pool=pool, assignment=assignment, comment=comment):
        _after_review(session, pool=pool, labeler_ids={assignment.labeler_id})
    session.commit()
    session.refresh(assignment)
    return assignment


def reject_assignment(
    session: Session, *, requester: User, assignment_id: int, comment: str
) -> Assignment:
    """Reject a submitted suite with a comment the labeler sees."""
    assignment, pool = get_reviewable(session, requester=requester, assignment_id=assignment_id)
    if reject_suite(session, pool=pool, assignment=assignment, comment=comment):
        _after_review(session, pool=pool, labeler_ids={assignment.labeler_id})
    session.commit()
    session.refresh(assignment)
    return assignment


def list_pool_assignments(
    session: Session,
    *,
    requester: User,
    pool_id: int,
    labeler_id: int | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Assignment], int]:
    """A page of the pool's finished suites (filters: labeler, status) and the total."""
    overlap.owned_pool(session, requester_id=requester.id, pool_id=pool_id)
    query = select(Assignment).where(Assignment.pool_id == pool_id)
    if labeler_id is not None:
        query = query.where(Assignment.labeler_id == labeler_id)
    if status:
        query = query.where(Assignment.status == status.lower())
    else:
        query = query.where(
            Assignment.status.in_(
                [AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED, AssignmentStatus.REJECTED]
            )
        )
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(Assignment.submitted_at.desc(), Assignment.id.desc())
        .offset((max(page, 1) - 1) * per_page)
        .limit(per_page)
    ).all()
    return list(rows), int(total)


def suite_answers(session: Session, assignment_ids: list[int]) -> dict[int, list[tuple]]:
    """Assignment id → [(task, answer value)] in suite order, for review screens."""
    if not assignment_ids:
        return {}
    rows = session.exec(
        select(AssignmentTask.assignment_id, Task, Answer.value)
        .join(Task, Task.id == AssignmentTask.task_id)
        .join(
            Answer,
            (Answer.assignment_id == AssignmentTask.assignment_id)
            & (Answer.task_id == AssignmentTask.task_id),
            isouter=True,
        )
        .where(AssignmentTask.assignment_id.in_(assignment_ids))
        .order_by(AssignmentTask.assignment_id, AssignmentTask.position, AssignmentTask.id)
    ).all()
    out: dict[int, list[tuple]] = {}
    for assignment_id, task, value in rows:
        out.setdefault(assignment_id, []).append((task, value))
    return out


def review_tsv(session: Session, *, requester: User, pool_id: int) -> str:
    """The pool's SUBMITTED suites as a review file (one row per task)."""
    overlap.owned_pool(session, requester_id=requester.id, pool_id=pool_id)
    assignments = session.exec(
        select(Assignment)
        .where(Assignment.pool_id == pool_id, Assignment.status == AssignmentStatus.SUBMITTED)
        .order_by(Assignment.id)
    ).all()
    answers = suite_answers(session, [a.id for a in assignments])
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(TSV_COLUMNS)
    for assignment in assignments:
        for task, value in answers.get(assignment.id, []):
            row = [
                assignment.id,
                assignment.labeler_id,
                task.image,
                value or "",
                task.known_answer or "",
                "",
                "",
            ]
            writer.writerow([spreadsheet_safe(cell) for cell in row])
    return buffer.getvalue()


def _read_verdicts(data: bytes) -> tuple[dict[int, tuple[str, str, int]], list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return {}, ["the file is not UTF-8 text"]
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    if not rows:
        return {}, ["the file is empty"]
    header = [h.strip() for h in rows[0]]
    missing = [c for c in ("ASSIGNMENT:assignment_id", "ACCEPT:verdict") if c not in header]
    if missing:
        return {}, [f"row 1: missing column {', '.join(missing)}"]
    id_col = header.index("ASSIGNMENT:assignment_id")
    verdict_col = header.index("ACCEPT:verdict")
    comment_col = header.index("ACCEPT:comment") if "ACCEPT:comment" in header else None
    verdicts: dict[int, tuple[str, str, int]] = {}
    problems: list[str] = []

    def cell(row: list[str], col: int | None) -> str:
        text = row[col].strip() if col is not None and col < len(row) else ""
        return from_spreadsheet_safe(text)  # a reviewer's '+ (typed so it stays text)

    for number, row in enumerate(rows[1:], start=2):
        if not "".join(row).strip():
            continue
        raw_id, verdict, comment = cell(row, id_col), cell(row, verdict_col), cell(row, comment_col)
        if not verdict:
            continue
        if verdict not in ("+", "-"):
            problems.append(f"row {number}: verdict {verdict!r} is not + or -")
            continue
        if not raw_id.isdigit():
            problems.append(f"row {number}: {raw_id!r} is not an assignment id")
            continue
        if verdict == "-" and not comment:
            problems.append(f"row {number}: a rejection needs ACCEPT:comment")
            continue
        previous = verdicts.get(int(raw_id))
        if previous and previous[0] != verdict:
            problems.append(f"row {number}: assignment {raw_id} got both + and -")
            continue
        if previous is None or (comment and not previous[1]):
            verdicts[int(raw_id)] = (verdict, comment, number)
    return verdicts, problems


def apply_review_file(session: Session, *, requester: User, pool_id: int, data: bytes) -> dict:
    """Apply ``ACCEPT:verdict`` (+/-) and ``ACCEPT:comment`` from a review file, all or none."""
    pool = overlap.owned_pool(session, requester_id=requester.id, pool_id=pool_id)
    verdicts, problems = _read_verdicts(data)
    assignments = {
        a.id: a
        for a in session.exec(
            select(Assignment).where(
                Assignment.pool_id == pool.id, Assignment.id.in_(list(verdicts) or [-1])
            )
        )
    }
    for assignment_id, (verdict, _comment, number) in verdicts.items():
        assignment = assignments.get(assignment_id)
        if assignment is None:
            problems.append(f"row {number}: assignment {assignment_id} is not in this pool")
        elif verdict == "-" and assignment.status not in (
            AssignmentStatus.SUBMITTED,
            AssignmentStatus.REJECTED,
        ):
            problems.append(f"row {number}: assignment {assignment_id} is {assignment.status}")
        elif verdict == "+" and assignment.status not in (
            AssignmentStatus.SUBMITTED,
            AssignmentStatus.ACCEPTED,
            AssignmentStatus.REJECTED,
        ):
            problems.append(f"row {number}: assignment {assignment_id} is {assignment.status}")
    if problems:
        problems.sort(key=lambda p: int(p.split(":")[0].split()[-1]) if p.startswith("row") else 0)
        first = problems[0]
        raise UploadRejected(
            f"Nothing was applied. Fix these rows: {'; '.join(problems[:20])}",
            row=int(first.split(":")[0].split()[-1]) if first.startswith("row") else None,
            problems=problems,
        )
    counts = {"accepted": 0, "rejected": 0, "unchanged": 0}
    labelers: set[int] = set()
    for assignment_id, (verdict, comment, _number) in sorted(verdicts.items()):
        assignment = assignments[assignment_id]
        if verdict == "+":
            changed = accept_suite(session, pool=pool, assignment=assignment, comment=comment)
        else:
            changed = reject_suite(session, pool=pool, assignment=assignment, comment=comment)
        counts["accepted" if verdict == "+" else "rejected"] += int(changed)
        counts["unchanged"] += int(not changed)
        if changed:
            labelers.add(assignment.labeler_id)
    _after_review(session, pool=pool, labeler_ids=labelers)
    session.commit()
    return counts


def auto_accept_due(session: Session, *, now: datetime | None = None, limit: int = 500) -> int:
    """Accept suites whose pool's review period has ended; returns how many."""
    now = now or utcnow()
    pools = session.exec(
        select(Pool).where(
            Pool.auto_accept.is_(False),
            Pool.id.in_(
                select(Assignment.pool_id).where(
                    Assignment.status == AssignmentStatus.SUBMITTED,
                    Assignment.submitted_at <= now - timedelta(days=1),
                )
            ),
        )
    ).all()
    accepted = 0
    for pool in pools:
        period = timedelta(days=max(1, min(21, pool.review_period_days or 7)))
        due = session.exec(
            select(Assignment)
            .where(
                Assignment.pool_id == pool.id,
                Assignment.status == AssignmentStatus.SUBMITTED,
                Assignment.submitted_at <= now - period,
            )
            .order_by(Assignment.submitted_at)
            .limit(limit - accepted)
        ).all()
        for assignment in due:
            comment = "Accepted automatically at the end of the review period."
            accepted += int(
                accept_suite(session, pool=pool, assignment=assignment, comment=comment, now=now)
            )
        _settle_if_closed(session, pool=pool)
        if accepted >= limit:
            break
    session.commit()
    return accepted


def labeler_names(session: Session, labeler_ids: list[int]) -> dict[int, str]:
    """The display names of these labelers (as the pool page shows them)."""
    ids = sorted(set(labeler_ids))
    if not ids:
        return {}
    return dict(session.exec(select(User.id, User.name).where(User.id.in_(ids))).all())
