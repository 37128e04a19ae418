"""Custom Vision exports: ``export_iteration`` / ``get_exports`` on Crowdlab's model exports.

Only what Crowdlab really produces is offered: platform ``ONNX`` (opset 17, softmax output,
classes and preprocessing in the file's metadata), for iterations of a project in a
compact domain, as Azure does. Other platforms and flavors are refused with Azure's codes.

The ``downloadUri`` of a finished export can be fetched with the Training-Key header, or
without any header while its signature is valid (Azure's own URIs are pre-signed blob URLs,
and its export sample downloads them with a bare ``requests.get``).
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session

from app.compat.customvision.domain import CustomVisionError
from app.compat.customvision.iterations import get_iteration, iteration_domain
from app.db.models import Collection, ModelStatus, TrainedModel, User
from app.errors import Conflict
from app.services.ml import exports
from app.settings import get_settings

PLATFORMS = {"ONNX": "onnx"}  # Custom Vision platform → Crowdlab export format
ALL_PLATFORMS = ("CoreML", "TensorFlow", "DockerFile", "ONNX", "VAIDK", "OpenVino")
LINK_SECONDS = 24 * 3600
_STATUS = {"exporting": "Exporting", "done": "Done", "failed": "Failed"}


def _check_export(collection: Collection, model: TrainedModel, platform: str, flavor: str | None):
    if platform not in ALL_PLATFORMS:
        raise CustomVisionError(
            "ErrorExporterInvalidPlatform",
            f"Unknown export platform {platform!r}; Crowdlab exports ONNX.",
        )
    domain = iteration_domain(collection, model)
    if not domain["exportable"]:
        raise CustomVisionError(
            "BadRequestExportValidationFailed",
            f"This iteration was trained in the {domain['name']} domain and cannot be "
            "exported: export needs a compact domain, as in Azure (switch the project's "
            "domain and train again; Crowdlab's model page exports any model).",
        )
    if platform not in PLATFORMS:
        raise CustomVisionError(
            "BadRequestExportValidationFailed",
            f"Export platform {platform} is not supported: Crowdlab exports ONNX only.",
        )
    if flavor:
        raise CustomVisionError(
            "BadRequestExportValidationFailed",
            f"ONNX flavor {flavor!r} is not supported: Crowdlab writes one ONNX model "
            "(opset 17); leave the flavor out.",
        )
    if model.status in (ModelStatus.QUEUED, ModelStatus.TRAINING):
        raise CustomVisionError(
            "BadRequestExportWhileTraining", "The iteration is training; export it when done."
        )
    if model.status != ModelStatus.COMPLETED:
        raise CustomVisionError(
            "BadRequestIterationIsNotTrained", "The iteration did not finish training."
        )


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().resolved_secret_key, salt="cv-export")


def link_token(model: TrainedModel, fmt: str) -> str:
    """The signature part of a download URI (expires after a day)."""
    return _serializer().dumps({"model": model.id, "format": fmt})


def model_for_link_token(session: Session, token: str, fmt: str) -> TrainedModel | None:
    """The model a valid download signature names (``None`` for a bad or expired one)."""
    try:
        data = _serializer().loads(token, max_age=LINK_SECONDS)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("format") != fmt:
        return None
    return session.get(TrainedModel, int(data.get("model") or 0))


def export_view(model: TrainedModel, job, download_uri: str | None) -> dict:
    """An export as Custom Vision's ``Export``."""
    fmt = job.payload["format"]
    status = _STATUS[exports.export_status(model, job)]
    platform = next(p for p, f in PLATFORMS.items() if f == fmt)
    return {
        "platform": platform,
        "status": status,
        "downloadUri": download_uri if status == "Done" else None,
        "flavor": None,
        "newerVersionAvailable": False,
    }


def export_iteration(
    session: Session,
    *,
    requester: User,
    project_id: str,
    iteration_id: str,
    platform: str,
    flavor: str | None = None,
):
    """Start exporting an iteration; ``(model, job)``. A second call while it runs is refused."""
    collection, model = get_iteration(
        session, requester=requester, project_id=project_id, iteration_id=iteration_id
    )
    _check_export(collection, model, platform, flavor)
    fmt = PLATFORMS[platform]
    running = [
        job
        for job in exports.list_exports(session, requester=requester, model_id=model.id)
        if job.payload.get("format") == fmt and exports.export_status(model, job) == "exporting"
    ]
    if running:
        raise CustomVisionError(
            "BadRequestExportAlreadyInProgress",
            f"{iteration_id} is already queued for export; poll get_exports.",
        )
    try:
        job = exports.export_model(session, requester=requester, model_id=model.id, fmt=fmt)
    except Conflict as exc:
        raise CustomVisionError("BadRequestIterationIsNotTrained", exc.message) from None
    return model, job


def list_exports(session: Session, *, requester: User, project_id: str, iteration_id: str):
    """The iteration's exports in Custom Vision platforms: ``(model, [job])``."""
    _, model = get_iteration(
        session, requester=requester, project_id=project_id, iteration_id=iteration_id
    )
    jobs = exports.list_exports(session, requester=requester, model_id=model.id)
    return model, [job for job in jobs if job.payload.get("format") in PLATFORMS.values()]


def export_download(
    session: Session, *, requester: User, project_id: str, iteration_id: str, platform: str
):
    """``(model, path, file name)`` of a finished export (``NotFound`` before)."""
    _, model = get_iteration(
        session, requester=requester, project_id=project_id, iteration_id=iteration_id
    )
    fmt = PLATFORMS.get(platform)
    if fmt is None:
        raise CustomVisionError("ErrorExporterInvalidPlatform", f"No {platform} export.")
    path = exports.export_file(session, requester=requester, model_id=model.id, fmt=fmt)
    return model, path, exports.download_name(model, fmt)
