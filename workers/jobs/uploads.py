"""The ``upload`` job: large TSV / image / ZIP uploads with a progress bar."""

from __future__ import annotations

from app.db.engine import session_scope
from app.services.projects.upload_batches import discard_staged, upload_key_of
from app.services.projects.upload_jobs import discard_upload_files, run_upload_job
from workers.registry import job, on_failure


@job("upload")
def upload(job_id: int, payload: dict, progress) -> dict:
    """Check the saved upload and import it (all or nothing; restarts from scratch)."""
    return run_upload_job(job_id, payload, progress)


@on_failure("upload")
def upload_failed(payload: dict, message: str, cancelled: bool) -> None:
    """Drop the saved files and any staged rows; nothing was imported."""
    discard_upload_files(payload)
    with session_scope() as session:
        discard_staged(session, upload_key=upload_key_of(payload))
