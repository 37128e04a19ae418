"""The export job: a trained model's checkpoint → an ONNX or TorchScript file beside it."""

from __future__ import annotations

from app.db.engine import session_scope
from app.db.models import TrainedModel
from app.errors import NotFound
from app.services.ml.exports import EXPORT_JOB_KIND, export_path
from workers.registry import job


@job(EXPORT_JOB_KIND)
def export_model_job(job_id: int, payload: dict, progress) -> dict:
    """Write the export (atomically; a retry simply writes it again)."""
    from model.export import export_checkpoint

    fmt = str(payload["format"])
    with session_scope(write=False) as session:
        model = session.get(TrainedModel, int(payload["model_id"]))
        if model is None or not model.checkpoint_dir:
            raise NotFound("The model was deleted before it could be exported.")
        checkpoint_dir, target = model.checkpoint_dir, export_path(model, fmt)
    progress(0.1, f"Exporting to {fmt}", force=True)
    written = export_checkpoint(checkpoint_dir, fmt, target)
    return {"format": fmt, "file": written.name, "bytes": written.stat().st_size}
