"""Large TSV uploads in short write transactions.

The file is read row by row and its checked rows go into ``upload_row`` a batch at a
time, each batch its own short transaction, so other writers (labelers, the periodic
jobs) interleave with the import and memory does not grow with the file. The checks that
need every row (duplicates, images already in the pool) then run in SQL, and one
statement moves the rows into ``task``: the upload appears whole or not at all. A failed
or restarted upload removes its staged rows (``discard_staged``;
``upload_jobs.cleanup_upload`` for a job).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from app.db.engine import is_busy_error, session_scope
from app.db.models import Pool, Task
from app.db.models.upload import UploadRow
from app.db.types import UTCDateTime, utcnow
from app.services.projects.upload_formats import (
    ALREADY_IN_POOL,
    MAX_PROBLEMS,
    Skipped,
    TsvContext,
    duplicate_message,
    failure,
    iter_task_tsv,
    reject,
)

# Rows per write transaction: a few tens of milliseconds of SQLite's write lock.
BATCH_ROWS = 2000
# A batch that found the database busy is tried again this many times before the upload
# fails (a long import should not die of one busy moment).
BUSY_RETRIES = 3

Progress = Callable[..., None]
_rows = UploadRow.__table__
_tasks = Task.__table__


def discard_staged(session: Session, *, upload_key: str) -> None:
    """Delete an upload's staged rows (commits; nothing when there are none)."""
    session.execute(sa.delete(_rows).where(_rows.c.upload_key == upload_key))
    session.commit()


def upload_key_of(payload: dict) -> str:
    """The staging key of an upload job: the name of its saved-files folder."""
    folder = str(payload.get("folder") or "")
    return folder.rstrip("/").rsplit("/", 1)[-1]


def stage_tsv(
    *,
    upload_key: str,
    stream: BinaryIO,
    context: TsvContext,
    progress: Progress,
    size: int,
    skipped: Skipped | None = None,
) -> int:
    """Check the TSV row by row and stage its good rows in batches; returns the row count.

    Row problems raise UploadRejected after the whole file was read (each row named), or,
    given ``skipped``, the bad rows are left out and listed there."""
    batch: list[dict] = []
    staged = 0

    def flush() -> None:
        nonlocal staged
        for attempt in range(BUSY_RETRIES + 1):
            try:
                with session_scope() as session:
                    session.execute(sa.insert(_rows), batch)
                    session.commit()
                break
            except DBAPIError as exc:  # another writer kept the lock: wait, try again
                if attempt == BUSY_RETRIES or not is_busy_error(exc):
                    raise
                time.sleep(0.5 * (attempt + 1))
        staged += len(batch)
        batch.clear()
        done = stream.tell() / size if size else 1.0
        progress(0.85 * done, f"Checked and saved {staged} rows")

    for row, item in iter_task_tsv(stream, context, check_duplicates=False, skipped=skipped):
        batch.append(
            {
                "upload_key": upload_key,
                "seq": staged + len(batch) + 1,
                "row": row,
                "kind": item.kind,
                "image": item.image,
                "input_values": item.input_values or {"image": item.image},
                "media_id": item.media_id,
                "known_answer": item.known_answer,
                "hint": item.hint,
                "overlap": item.overlap,
            }
        )
        if len(batch) >= BATCH_ROWS:
            flush()
    if batch:
        flush()
    return staged


def staged_urls(session: Session, *, upload_key: str) -> list[tuple[int, str]]:
    """``(row, URL)`` of the staged rows whose image is a URL (not a stored file)."""
    return [
        (row, image)
        for row, image in session.execute(
            sa.select(_rows.c.row, _rows.c.image)
            .where(_rows.c.upload_key == upload_key, _rows.c.media_id.is_(None))
            .order_by(_rows.c.row)
        ).all()
    ]


def drop_rows(session: Session, *, upload_key: str, rows: list[int]) -> None:
    """Remove staged rows (left out of the upload; commits)."""
    for start in range(0, len(rows), 500):
        session.execute(
            sa.delete(_rows).where(
                _rows.c.upload_key == upload_key, _rows.c.row.in_(rows[start : start + 500])
            )
        )
    session.commit()


def _problems(
    session: Session, *, upload_key: str, pool_id: int, limit: int | None = MAX_PROBLEMS
) -> list:
    """Rows repeating an image of the upload or already in the pool, in row order:
    ``(row, image, message)``."""
    first = (
        sa.select(_rows.c.image, sa.func.min(_rows.c.row).label("first"))
        .where(_rows.c.upload_key == upload_key)
        .group_by(_rows.c.image)
        .having(sa.func.count() > 1)
        .subquery()
    )
    repeats = session.execute(
        sa.select(_rows.c.row, _rows.c.input_values, first.c.first)
        .join(first, first.c.image == _rows.c.image)
        .where(_rows.c.upload_key == upload_key, _rows.c.row > first.c.first)
        .order_by(_rows.c.row)
        .limit(limit)
    ).all()
    in_pool = session.execute(
        sa.select(_rows.c.row, _rows.c.input_values)
        .join(_tasks, sa.and_(_tasks.c.image == _rows.c.image, _tasks.c.pool_id == pool_id))
        .where(_rows.c.upload_key == upload_key)
        .order_by(_rows.c.row)
        .limit(limit)
    ).all()
    problems: dict[int, tuple[str, str]] = {}
    for row, given, first_row in repeats:
        problems[row] = ((given or {}).get("image", ""), duplicate_message(first_row))
    for row, given in in_pool:
        problems.setdefault(row, ((given or {}).get("image", ""), ALREADY_IN_POOL))
    rows = sorted(problems)[:limit]
    return [(row, *problems[row]) for row in rows]


def move_staged(
    session: Session, *, upload_key: str, pool: Pool, skipped: Skipped | None = None
) -> dict[str, int]:
    """Check the staged rows as a whole, then move them into the pool as tasks (flush
    only: the caller commits, making the upload appear at once). With ``skipped``,
    repeated rows and images already in the pool are left out and listed there."""
    limit = None if skipped is not None else MAX_PROBLEMS
    problems = _problems(session, upload_key=upload_key, pool_id=pool.id, limit=limit)
    if problems and skipped is not None:
        for row, image, message in problems:
            skipped.add(failure(row, image, message))
        for start in range(0, len(problems), 500):
            rows = [row for row, _, _ in problems[start : start + 500]]
            session.execute(
                sa.delete(_rows).where(_rows.c.upload_key == upload_key, _rows.c.row.in_(rows))
            )
    elif problems:
        raise reject(
            [(row, "INPUT:image", f"row {row}: {message}") for row, _, message in problems],
            [failure(row, image, message) for row, image, message in problems],
        )
    counts = dict(
        session.execute(
            sa.select(_rows.c.kind, sa.func.count())
            .where(_rows.c.upload_key == upload_key)
            .group_by(_rows.c.kind)
        ).all()
    )
    start = session.execute(
        sa.select(sa.func.coalesce(sa.func.max(_tasks.c.position), -1)).where(
            _tasks.c.pool_id == pool.id
        )
    ).scalar_one()
    columns = [
        "pool_id",
        "kind",
        "image",
        "input_values",
        "media_id",
        "known_answer",
        "hint",
        "overlap",
        "taken_count",
        "submitted_count",
        "position",
        "created_at",
    ]
    source = (
        sa.select(
            sa.literal_column(str(int(pool.id)), sa.Integer),
            _rows.c.kind,
            _rows.c.image,
            _rows.c.input_values,
            _rows.c.media_id,
            _rows.c.known_answer,
            _rows.c.hint,
            _rows.c.overlap,
            sa.literal_column("0", sa.Integer),
            sa.literal_column("0", sa.Integer),
            _rows.c.seq + int(start),
            sa.literal(utcnow(), UTCDateTime),
        )
        .where(_rows.c.upload_key == upload_key)
        .order_by(_rows.c.seq)
    )
    session.execute(sa.insert(_tasks).from_select(columns, source))
    session.execute(sa.delete(_rows).where(_rows.c.upload_key == upload_key))
    return counts
