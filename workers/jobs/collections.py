"""Collection import from a saved ZIP archive (big archives run here, not in the request)."""

from __future__ import annotations

from app.db.engine import session_scope
from app.services.ml import collections
from workers.registry import job, on_failure


@job(collections.IMPORT_JOB_KIND)
def import_collection_zip(job_id: int, payload: dict, progress) -> dict:
    """Check and store every image of the archive, then add the items with their split."""
    with session_scope() as session:
        count = collections.run_zip_import(
            session,
            collection_id=int(payload["collection_id"]),
            path=payload["path"],
            progress=progress,
        )
    return {"collection_id": payload["collection_id"], "images": count}


@on_failure(collections.IMPORT_JOB_KIND)
def _import_failed(payload: dict, message: str, cancelled: bool) -> None:
    with session_scope() as session:
        collections.mark_import_failed(
            session,
            collection_id=int(payload["collection_id"]),
            message="Import cancelled." if cancelled else message,
            path=payload["path"],
        )
