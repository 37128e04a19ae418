"""The ``upload`` job's work: a saved upload checked and imported in the background.

A TSV is streamed and staged in short batches (``upload_batches``), its image URLs are
checked (``media.urls.check_image_urls``: bounded concurrency, a timeout each, the
private-address guard); images and ZIPs are checked first and written in one transaction.
Nothing of an upload enters the pool until all of it passed its checks (less the bad rows
or files, listed, when the requester chose so); a bad or failed upload leaves nothing. On
SQLite the checked rows then move into the pool in short batches (a retried job finishes
that move); elsewhere in one transaction.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlmodel import Session

from app.db.engine import get_engine, is_sqlite, refresh_statistics, session_scope
from app.db.models import Job, Pool, TaskKind, User
from app.services.jobs.records import JobCancelled
from app.services.media.urls import check_image_urls
from app.services.projects import upload_batches
from app.services.projects.pool_model import queue_model_predictions
from app.services.projects.upload_formats import Skipped, failure, reject
from app.services.projects.uploads import (
    Progress,
    UploadResult,
    _check_pool,
    _context,
    _prepare,
    _write,
)
from app.settings import get_settings


def run_upload_job(job_id: int, payload: dict, progress: Progress) -> dict:
    """The ``upload`` job: check everything (reporting progress), then write.

    A TSV is streamed and staged in short batches; images and ZIPs are checked first
    and written in one transaction. A retry (the worker died) starts from scratch, unless
    the earlier attempt had checked every row and begun moving them into the pool: then
    it finishes the move."""
    key = upload_batches.upload_key_of(payload)
    with session_scope(write=False) as session:
        begun = upload_batches.begun_publish(session, upload_key=key)
    if begun is not None:
        _publish(key, begun, progress)
        discard_upload_files(payload)
        return _created(begun.counts)
    with session_scope() as session:
        upload_batches.discard_staged(session, upload_key=key)  # an earlier attempt's rows
    try:
        if payload["kind"] == "tsv":
            return _run_tsv_job(payload, progress)
        return _run_files_job(payload, progress)
    except BaseException:
        with session_scope() as session:
            if upload_batches.begun_publish(session, upload_key=key) is None:
                upload_batches.discard_staged(session, upload_key=key)
            # else: every row was checked and the move began; a retry finishes it
        raise
    finally:
        discard_upload_files(payload)


def _created(counts: dict[str, int], skipped: Skipped | None = None) -> dict:
    return UploadResult(
        created={kind.value: counts.get(kind.value, 0) for kind in TaskKind},
        skipped=list(skipped or []),
        skipped_total=skipped.total if skipped is not None else 0,
    ).as_dict()


def _run_tsv_job(payload: dict, progress: Progress) -> dict:
    key = upload_batches.upload_key_of(payload)
    with session_scope(write=False) as session:
        pool = session.get(Pool, payload["pool_id"])
        _check_pool(pool)
        context = _context(session, pool, existing=False)
    path = Path(payload["folder"]) / "000000"
    skipped = Skipped() if payload.get("skip_bad") else None
    progress(0.0, "Checking the upload")
    with open(path, "rb") as stream:
        rows = upload_batches.stage_tsv(
            upload_key=key,
            stream=stream,
            context=context,
            progress=progress,
            size=path.stat().st_size,
            skipped=skipped,
        )
    if get_settings().check_image_urls:
        _check_urls(key, skipped, progress)
    progress(0.9, f"Adding {rows} tasks to the pool", force=True)
    if is_sqlite(get_engine()):
        # check with reads only, then move in short batches (SQLite has one write lock)
        with session_scope(write=False) as session:
            pool = session.get(Pool, payload["pool_id"])
            _check_pool(pool)
            left_out = upload_batches.staged_problems(
                session, upload_key=key, pool_id=pool.id, skipped=skipped
            )
        if left_out:
            with session_scope() as session:
                upload_batches.drop_rows(session, upload_key=key, rows=left_out)
        with session_scope(write=False) as session:
            staged = upload_batches.summarize_staged(session, upload_key=key, pool=pool)
        _refuse_when_nothing_is_left(staged, skipped)
        with session_scope() as session:
            upload_batches.begin_publish(session, upload_key=key, staged=staged)
            session.commit()
        _publish(key, staged, progress)
        with session_scope() as session:
            queue_model_predictions(session, pool=session.get(Pool, staged.pool_id))
        return _created(staged.counts, skipped)
    with session_scope() as session:  # PostgreSQL: one transaction, the upload appears whole
        pool = session.get(Pool, payload["pool_id"])
        _check_pool(pool)
        left_out = upload_batches.staged_problems(
            session, upload_key=key, pool_id=pool.id, skipped=skipped
        )
        if left_out:
            upload_batches.drop_rows(session, upload_key=key, rows=left_out)
        staged = upload_batches.summarize_staged(session, upload_key=key, pool=pool)
        _refuse_when_nothing_is_left(staged, skipped)
        upload_batches.move_all_staged(
            session,
            upload_key=key,
            pool_id=pool.id,
            start=staged.start,
            on_batch=_move_progress(staged, progress),
        )
        session.commit()
        refresh_statistics(session, table="task", rows=rows)
        queue_model_predictions(session, pool=pool)
    return _created(staged.counts, skipped)


def _refuse_when_nothing_is_left(staged: upload_batches.StagedUpload, skipped) -> None:
    if skipped is not None and not sum(staged.counts.values()):
        raise reject(
            [(f["row"], "INPUT:image", f"row {f['row']}: {f['reason']}") for f in skipped],
            list(skipped),
            total=skipped.total,
        )


def _move_progress(staged: upload_batches.StagedUpload, progress: Progress):
    """``on_batch(rows_moved)`` reporting the move into the pool. A cancel asked for now
    comes too late (the rows were all checked): the move finishes."""
    total = max(1, sum(staged.counts.values()))
    cancelled = False

    def on_batch(moved: int) -> None:
        nonlocal cancelled
        if cancelled:
            return
        try:
            progress(0.9 + 0.1 * moved / total, f"Adding tasks to the pool: {moved} of {total}")
        except JobCancelled:
            cancelled = True

    return on_batch


def _publish(key: str, staged: upload_batches.StagedUpload, progress: Progress) -> None:
    """SQLite: move checked rows into the pool in batches, reporting progress."""
    upload_batches.publish_in_batches(
        upload_key=key,
        pool_id=staged.pool_id,
        start=staged.start,
        on_batch=_move_progress(staged, progress),
    )


def _check_urls(key: str, skipped: Skipped | None, progress: Progress) -> None:
    """Check the staged rows' image URLs; refuse the upload naming each failing row, or
    (``skipped``) drop those rows and list them."""
    with session_scope(write=False) as session:
        staged = upload_batches.staged_urls(session, upload_key=key)
    if not staged:
        return
    settings = get_settings()

    def report(done: int, total: int) -> None:
        progress(0.6 + 0.25 * done / total, f"Checked {done} of {total} image URLs")

    progress(0.6, f"Checking {len(staged)} image URLs", force=True)
    problems = check_image_urls(
        (url for _, url in staged),
        concurrency=settings.url_check_concurrency,
        timeout=settings.url_check_timeout_seconds,
        progress=report,
    )
    failing = [failure(row, url, problems[url]) for row, url in staged if url in problems]
    if not failing:
        return
    if skipped is None:
        raise reject(
            [(f["row"], "INPUT:image", f"row {f['row']}: {f['reason']}") for f in failing[:50]],
            failing[: Skipped.MAX_LISTED],
            total=len(failing),
        )
    for entry in failing:
        skipped.add(entry)
    with session_scope() as session:
        upload_batches.drop_rows(session, upload_key=key, rows=[f["row"] for f in failing])


def _run_files_job(payload: dict, progress: Progress) -> dict:
    folder = Path(payload["folder"])
    paths = [folder / f"{i:06d}" for i in range(len(payload["names"]))]
    kind = payload["kind"]
    files = []
    if kind != "zip":
        files = [(n, p.read_bytes()) for n, p in zip(payload["names"], paths, strict=True)]
    with session_scope(write=False) as session:
        pool = session.get(Pool, payload["pool_id"])
        context = _context(session, pool)
    zip_file = open(paths[0], "rb") if kind == "zip" else None  # noqa: SIM115
    try:
        progress(0.0, "Checking the upload")
        prepared = _prepare(
            context,
            kind,
            files,
            zip_file,
            general_count=payload.get("general_count", 0),
            create_missing_options=payload.get("create_missing_options", False),
            progress=progress,
            skip_bad=bool(payload.get("skip_bad")),
        )
        progress(0.85, f"Saving {len(prepared.tasks)} tasks", force=True)
        with session_scope() as session:
            pool = session.get(Pool, payload["pool_id"])
            requester = session.get(User, pool.owner_id)
            _check_pool(pool)
            result, _ = _write(session, requester=requester, pool=pool, prepared=prepared)
            session.commit()
            refresh_statistics(session, table="task", rows=result.total)
            queue_model_predictions(session, pool=pool)
    finally:
        if zip_file is not None:
            zip_file.close()
    return result.as_dict()


def cleanup_upload(session: Session, *, job_id: int) -> None:
    """Undo whatever an ``upload`` job left behind (staged rows and saved files), so that
    it can be retried from the start or failed cleanly; safe to call more than once."""
    job = session.get(Job, job_id)
    if job is None or job.kind != "upload":
        return
    payload = job.payload or {}
    key = upload_batches.upload_key_of(payload)
    if key:
        upload_batches.discard_staged(session, upload_key=key)
    discard_upload_files(payload)


def discard_upload_files(payload: dict) -> None:
    """Remove an upload job's saved files."""
    folder = Path(payload.get("folder") or "")
    uploads_root = (get_settings().data_dir / "uploads").resolve()
    if folder.name and folder.resolve().parent == uploads_root:
        shutil.rmtree(folder, ignore_errors=True)
