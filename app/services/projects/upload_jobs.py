"""The ``upload`` job's work: a saved upload checked and imported in the background.

A TSV is streamed and staged in short batches (``upload_batches``); images and ZIPs are
checked first and written in one transaction. Either way the upload appears whole or
not at all, and a retried job starts from scratch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlmodel import Session

from app.db.engine import refresh_statistics, session_scope
from app.db.models import Job, Pool, TaskKind, User
from app.services.projects import upload_batches
from app.services.projects.pool_model import queue_model_predictions
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
    """The ``upload`` job: check everything (reporting progress), then write at once.

    A TSV is streamed and staged in short batches; images and ZIPs are checked first
    and written in one transaction. A retry (the worker died) starts from scratch."""
    key = upload_batches.upload_key_of(payload)
    with session_scope() as session:
        upload_batches.discard_staged(session, upload_key=key)  # an earlier attempt's rows
    try:
        if payload["kind"] == "tsv":
            return _run_tsv_job(payload, progress)
        return _run_files_job(payload, progress)
    except BaseException:
        with session_scope() as session:
            upload_batches.discard_staged(session, upload_key=key)
        raise
    finally:
        discard_upload_files(payload)


def _run_tsv_job(payload: dict, progress: Progress) -> dict:
    key = upload_batches.upload_key_of(payload)
    with session_scope(write=False) as session:
        pool = session.get(Pool, payload["pool_id"])
        _check_pool(pool)
        context = _context(session, pool, existing=False)
    path = Path(payload["folder"]) / "000000"
    progress(0.0, "Checking the upload")
    with open(path, "rb") as stream:
        rows = upload_batches.stage_tsv(
            upload_key=key,
            stream=stream,
            context=context,
            progress=progress,
            size=path.stat().st_size,
        )
    progress(0.9, f"Adding {rows} tasks to the pool", force=True)
    with session_scope() as session:
        pool = session.get(Pool, payload["pool_id"])
        _check_pool(pool)
        counts = upload_batches.move_staged(session, upload_key=key, pool=pool)
        session.commit()
        refresh_statistics(session, table="task", rows=rows)
        queue_model_predictions(session, pool=pool)
    created = {kind.value: counts.get(kind.value, 0) for kind in TaskKind}
    return UploadResult(created=created).as_dict()


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
