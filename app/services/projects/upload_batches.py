"""Large TSV uploads in short write transactions.

The file is read row by row and its checked rows go into ``upload_row`` a batch at a
time, each batch its own short transaction, so other writers (labelers, the periodic
jobs) interleave with the import and memory does not grow with the file. The checks that
need every row (duplicates, images already in the pool) then run in SQL; nothing of the
upload is in the pool until every row passed. Then the rows move into ``task``: on
PostgreSQL in one transaction (the upload appears whole at once), in statements of
``MOVE_ROWS_PG`` rows; on SQLite, whose one
write lock a statement over half a million rows would hold for seconds, in batches of
``PUBLISH_ROWS`` (each a short transaction; an upload job that dies meanwhile resumes
the move, see ``upload_jobs``). A bad or failed upload removes its staged rows
(``discard_staged``; ``upload_jobs.cleanup_upload`` for a job).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from app.db.engine import is_busy_error, is_sqlite, session_scope
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
# Staged rows moved into the pool per write transaction when the database is SQLite.
PUBLISH_ROWS = 2000
# After each batch an import pauses YIELD_SHARE × the time it held the write lock (at most
# YIELD_AT_MOST_S), so labelers' and requesters' writes get the lock in between.
YIELD_SHARE = 1.0
YIELD_AT_MOST_S = 0.5
# PostgreSQL moves the staged rows into the pool in one transaction, this many at a time.
MOVE_ROWS_PG = 20_000
MARKER_SEQ = 0  # the row that says "checked, moving into the pool" (task rows start at 1)
# A batch that found the database busy is tried again this many times before the upload
# fails (a long import should not die of one busy moment).
BUSY_RETRIES = 3

Progress = Callable[..., None]
_rows = UploadRow.__table__
_tasks = Task.__table__


def discard_staged(session: Session, *, upload_key: str) -> None:
    """Delete an upload's staged rows (commits; nothing when there are none). An upload
    whose checked rows began moving into the pool is finished instead: never half of it."""
    begun = begun_publish(session, upload_key=upload_key)
    session.commit()
    if begun is not None:
        publish_in_batches(upload_key=upload_key, pool_id=begun.pool_id, start=begun.start)
        return
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

    def write(session: Session) -> None:
        if is_sqlite(session.get_bind()):
            session.execute(sa.insert(_rows), batch)
        else:  # one COPY, not a statement a row: a fraction of the database's CPU
            _copy_rows(session, batch)

    def flush() -> None:
        nonlocal staged
        _write_patiently(write)
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


_STAGED_COLUMNS = (
    "upload_key", "seq", "row", "kind", "image", "input_values", "media_id", "known_answer",
    "hint", "overlap",
)  # fmt: skip


def _copy_rows(session: Session, batch: list[dict]) -> None:
    """PostgreSQL: write staged rows with ``COPY`` (in the session's transaction)."""
    cursor = session.connection().connection.driver_connection.cursor()
    statement = f"COPY upload_row ({', '.join(_STAGED_COLUMNS)}) FROM STDIN"
    with cursor.copy(statement) as copy:
        for item in batch:
            values = [item[name] for name in _STAGED_COLUMNS]
            values[5] = json.dumps(values[5])  # input_values
            copy.write_row(values)


def _write_patiently(write: Callable[[Session], object]) -> object:
    """``write(session)`` in a transaction of its own, committed; when another writer kept
    the lock past the busy timeout, wait and try again (``BUSY_RETRIES`` times)."""
    for attempt in range(BUSY_RETRIES + 1):
        try:
            started = time.monotonic()
            with session_scope() as session:
                result = write(session)
                session.commit()
                one_writer = is_sqlite(session.get_bind())
            # SQLite's writers do not queue across processes: one that writes batch after
            # batch takes the lock again before a waiting request wakes up. Pausing as
            # long as the batch held the lock leaves others at least half of it.
            if one_writer:
                time.sleep(min(YIELD_AT_MOST_S, time.monotonic() - started) * YIELD_SHARE)
            return result
        except DBAPIError as exc:
            if attempt == BUSY_RETRIES or not is_busy_error(exc):
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


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


@dataclass(frozen=True)
class StagedUpload:
    """An upload's checked staged rows: their pool, how many of each kind, and the
    position before its first task (the pool's last task's)."""

    pool_id: int
    counts: dict[str, int]
    start: int

    def as_dict(self) -> dict:
        return {"pool_id": self.pool_id, "counts": self.counts, "start": self.start}


def staged_problems(
    session: Session, *, upload_key: str, pool_id: int, skipped: Skipped | None = None
) -> list[int]:
    """Check the staged rows as a whole: repeated images and images already in the pool
    refuse the upload (``UploadRejected`` names them), or with ``skipped`` are listed
    there; returns the rows to leave out (``drop_rows``)."""
    limit = None if skipped is not None else MAX_PROBLEMS
    problems = _problems(session, upload_key=upload_key, pool_id=pool_id, limit=limit)
    if problems and skipped is None:
        raise reject(
            [(row, "INPUT:image", f"row {row}: {message}") for row, _, message in problems],
            [failure(row, image, message) for row, image, message in problems],
        )
    for row, image, message in problems:
        skipped.add(failure(row, image, message))
    return [row for row, _, _ in problems]


def summarize_staged(session: Session, *, upload_key: str, pool: Pool) -> StagedUpload:
    """The checked staged rows' counts by kind and where their positions start."""
    counts = dict(
        session.execute(
            sa.select(_rows.c.kind, sa.func.count())
            .where(_rows.c.upload_key == upload_key, _rows.c.seq > MARKER_SEQ)
            .group_by(_rows.c.kind)
        ).all()
    )
    start = session.execute(
        sa.select(sa.func.coalesce(sa.func.max(_tasks.c.position), -1)).where(
            _tasks.c.pool_id == pool.id
        )
    ).scalar_one()
    return StagedUpload(
        pool_id=pool.id, counts={str(k): int(n) for k, n in counts.items()}, start=int(start)
    )


def begin_publish(session: Session, *, upload_key: str, staged: StagedUpload) -> None:
    """Record that the checked rows are moving into the pool (a marker row, ``seq`` 0;
    flush only, the caller commits): from here the upload is finished, never dropped."""
    session.execute(
        sa.insert(_rows).values(
            upload_key=upload_key,
            seq=MARKER_SEQ,
            row=0,
            kind="publishing",
            image="",
            input_values=staged.as_dict(),
        )
    )


def begun_publish(session: Session, *, upload_key: str) -> StagedUpload | None:
    """The upload whose move into the pool began (``begin_publish``), else None."""
    state = session.execute(
        sa.select(_rows.c.input_values).where(
            _rows.c.upload_key == upload_key, _rows.c.seq == MARKER_SEQ
        )
    ).scalar_one_or_none()
    return None if state is None else StagedUpload(**state)


def move_staged(
    session: Session, *, upload_key: str, pool_id: int, start: int, below=None, low=MARKER_SEQ + 1
) -> int:
    """Move staged rows (all, or those with ``low <= seq < below``) into the pool as tasks
    and drop them from the stage (flush only: the caller commits); how many moved."""
    staged = (_rows.c.upload_key == upload_key) & (_rows.c.seq >= max(low, MARKER_SEQ + 1))
    if below is not None:
        staged = staged & (_rows.c.seq < below)
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
            sa.literal_column(str(int(pool_id)), sa.Integer),
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
        .where(staged)
        .order_by(_rows.c.seq)
    )
    # counted first: an INSERT ... SELECT's row count is not reported on every driver path
    moved = session.execute(sa.select(sa.func.count()).where(staged)).scalar_one()
    session.execute(sa.insert(_tasks).from_select(columns, source))
    session.execute(sa.delete(_rows).where(staged))
    return int(moved)


def move_all_staged(
    session: Session,
    *,
    upload_key: str,
    pool_id: int,
    start: int,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """PostgreSQL: move every staged row into the pool in the session's transaction (the
    upload appears whole at the commit), ``MOVE_ROWS_PG`` at a time (each statement short,
    the job's progress moving). ``on_batch(rows_moved)`` after each batch."""
    low, high = session.execute(
        sa.select(sa.func.min(_rows.c.seq), sa.func.max(_rows.c.seq)).where(
            _rows.c.upload_key == upload_key, _rows.c.seq > MARKER_SEQ
        )
    ).one()
    if low is None:
        return
    moved = 0
    for first in range(int(low), int(high) + 1, MOVE_ROWS_PG):
        below = first + MOVE_ROWS_PG
        moved += move_staged(
            session, upload_key=upload_key, pool_id=pool_id, start=start, below=below, low=first
        )
        if on_batch is not None:
            on_batch(moved)


def publish_in_batches(
    *, upload_key: str, pool_id: int, start: int, on_batch: Callable[[int], None] | None = None
) -> None:
    """Move the checked staged rows into the pool ``PUBLISH_ROWS`` at a time, each batch
    its own short transaction (SQLite: one writer at a time, and a single statement over
    half a million rows would hold the write lock for seconds). A row is staged or a
    task, never both, so a publish that stopped half-way is finished by calling this
    again. ``on_batch(rows_moved)`` after each batch."""
    moved = 0

    def move_a_batch(session: Session) -> int | None:
        low = session.execute(
            sa.select(sa.func.min(_rows.c.seq)).where(
                _rows.c.upload_key == upload_key, _rows.c.seq > MARKER_SEQ
            )
        ).scalar_one()
        if low is None:  # all moved: the marker goes too
            session.execute(sa.delete(_rows).where(_rows.c.upload_key == upload_key))
            return None
        below = int(low) + PUBLISH_ROWS
        return move_staged(
            session, upload_key=upload_key, pool_id=pool_id, start=start, below=below
        )

    while (count := _write_patiently(move_a_batch)) is not None:
        moved += count
        if on_batch is not None:
            on_batch(moved)
