"""Model exports: a trained model as an ONNX or TorchScript file, made by a job.

An export is a job row (kind ``model_export``, payload ``{"model_id", "format"}``); the
file lands in the model's checkpoint directory (``exports/model.onnx``, with a JSON sidecar
naming the classes and preprocessing). Exporting again returns the export already made
or under way, so a client that retries never queues a second one.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from app.db.models import Job, JobStatus, ModelStatus, TrainedModel, User
from app.errors import Conflict, NotFound, ValidationFailed
from app.services.jobs.records import submit_job
from app.services.ml.trained_models import get_model

EXPORT_JOB_KIND = "model_export"
FORMATS = ("onnx", "torchscript")
FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
MEDIA_TYPES = {"onnx": "application/octet-stream", "torchscript": "application/octet-stream"}


def check_format(fmt: str) -> str:
    """A known format name (lower case), or ``ValidationFailed``."""
    value = (fmt or "").strip().lower()
    if value not in FORMATS:
        raise ValidationFailed(
            f"Unknown export format {fmt!r}.",
            errors={"format": f"Use one of {', '.join(FORMATS)}."},
        )
    return value


def export_path(model: TrainedModel, fmt: str) -> Path:
    """Where the export of a model in a format is written."""
    if not model.checkpoint_dir:
        raise NotFound("The model has no checkpoint.")
    return Path(model.checkpoint_dir) / "exports" / FILE_NAMES[fmt]


def _export_jobs(session: Session, model: TrainedModel) -> list[Job]:
    jobs = session.exec(
        select(Job)
        .where(Job.owner_id == model.owner_id, Job.kind == EXPORT_JOB_KIND)
        .order_by(Job.id.desc())
    ).all()
    return [job for job in jobs if (job.payload or {}).get("model_id") == model.id]


def list_exports(session: Session, *, requester: User, model_id: int) -> list[Job]:
    """The latest export job of each format of the requester's model, newest first."""
    model = get_model(session, requester=requester, model_id=model_id)
    latest: dict[str, Job] = {}
    for job in _export_jobs(session, model):
        latest.setdefault(job.payload.get("format"), job)
    return sorted(latest.values(), key=lambda job: -(job.id or 0))


def export_status(model: TrainedModel, job: Job) -> str:
    """``exporting``, ``done`` or ``failed`` (a done export whose file is gone is failed)."""
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return "exporting"
    if job.status == JobStatus.SUCCEEDED:
        path = export_path(model, job.payload["format"]) if model.checkpoint_dir else None
        return "done" if path is not None and path.is_file() else "failed"
    return "failed"


def export_model(session: Session, *, requester: User, model_id: int, fmt: str) -> Job:
    """Start exporting a trained model (or return the export already done or under way)."""
    fmt = check_format(fmt)
    model = get_model(session, requester=requester, model_id=model_id)
    if model.status != ModelStatus.COMPLETED or not model.checkpoint_dir:
        raise Conflict("Only a model that finished training can be exported.")
    for job in _export_jobs(session, model):
        if job.payload.get("format") == fmt and export_status(model, job) != "failed":
            return job
    return submit_job(
        session,
        kind=EXPORT_JOB_KIND,
        owner=requester,
        payload={"model_id": model.id, "format": fmt},
    )


def export_file(session: Session, *, requester: User, model_id: int, fmt: str) -> Path:
    """The exported file of the requester's model (``NotFound`` until the export is done)."""
    fmt = check_format(fmt)
    model = get_model(session, requester=requester, model_id=model_id)
    path = export_path(model, fmt) if model.checkpoint_dir else None
    if path is None or not path.is_file():
        raise NotFound(f"The model has no {fmt} export yet; start one first.")
    return path


def download_name(model: TrainedModel, fmt: str) -> str:
    """The file name a download is saved under (``model-12.onnx``)."""
    suffix = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}[fmt]
    return f"model-{model.id}{suffix}"
