"""Banning many labelers at once from a file of ids (one per line, or TSV with worker_id)."""

from __future__ import annotations

import csv
import io

from sqlmodel import Session

from app.db.models import Ban, Role, User
from app.db.types import utcnow
from app.errors import UploadRejected
from app.services.quality.bans import ban_expiry, create_ban, normalize_scope, scope_target

MAX_FILE_IDS = 10_000


def parse_labeler_ids(session: Session, data: bytes) -> list[int]:
    """Labeler ids from a file: one per line, or a TSV with a ``worker_id`` column.

    Every bad row is reported with its number; nothing is returned half-parsed.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadRejected("The file is not UTF-8 text.", row=None) from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise UploadRejected("The file has no labeler ids.")
    column = 0
    start = 0
    header = [h.strip() for h in lines[0].split("\t")]
    lowered = [h.lower() for h in header]
    for name in ("worker_id", "assignment:worker_id", "user_id", "labeler_id"):
        if name in lowered:
            column, start = lowered.index(name), 1
            break
    rows = list(csv.reader(io.StringIO("\n".join(lines[start:])), delimiter="\t"))
    ids: list[int] = []
    problems: list[str] = []
    for offset, row in enumerate(rows):
        number = offset + start + 1
        if not row or not "".join(row).strip():
            continue
        raw = row[column].strip() if column < len(row) else ""
        if not raw.isdigit():
            problems.append(f"row {number}: {raw!r} is not a labeler id")
            continue
        user = session.get(User, int(raw))
        if user is None or user.role != Role.LABELER:
            problems.append(f"row {number}: no labeler with id {raw}")
            continue
        if int(raw) not in ids:
            ids.append(int(raw))
    if len(ids) > MAX_FILE_IDS:
        problems.append(f"at most {MAX_FILE_IDS} ids per file")
    if problems:
        first_row = (
            int(problems[0].split(":")[0].split()[-1]) if problems[0].startswith("row") else None
        )
        raise UploadRejected(
            f"Nothing was banned. Fix these rows: {'; '.join(problems[:20])}",
            row=first_row,
            problems=problems,
        )
    return ids


def ban_labelers_from_file(
    session: Session,
    *,
    requester: User,
    data: bytes,
    scope: str,
    pool_id: int | None = None,
    project_id: int | None = None,
    duration: int | None = None,
    duration_unit: str = "DAYS",
    private_comment: str,
    public_comment: str = "",
) -> list[Ban]:
    """Ban every labeler listed in the file, all or none."""
    ids = parse_labeler_ids(session, data)
    normalized = normalize_scope(scope)
    pool, project_id = scope_target(
        session, requester=requester, scope=normalized, pool_id=pool_id, project_id=project_id
    )
    expires_at = ban_expiry(utcnow(), duration, duration_unit)
    bans = [
        create_ban(
            session,
            requester_id=requester.id,
            labeler_id=labeler_id,
            scope=normalized,
            pool=pool,
            project_id=project_id,
            expires_at=expires_at,
            private_comment=private_comment,
            public_comment=public_comment,
        )
        for labeler_id in ids
    ]
    session.commit()
    return bans
