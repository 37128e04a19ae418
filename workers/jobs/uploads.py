"""The ``upload`` job: large TSV / image / ZIP uploads with a progress bar."""

from __future__ import annotations

from app.services.projects.uploads import discard_upload_files, run_upload_job
from workers.registry import job, on_failure


@job("upload")
def upload(job_id: int, payload: dict, progress) -> dict:
    """Check the saved upload, then import it in one transaction (all or nothing)."""
    return run_upload_job(payload, progress)


@on_failure("upload")
def upload_failed(payload: dict, message: str, cancelled: bool) -> None:
    """Drop the saved files; nothing was imported."""
    discard_upload_files(payload)
