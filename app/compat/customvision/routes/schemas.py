"""Custom Vision wire shapes: camelCase request bodies and JSON views of Crowdlab rows.

Every date is written as ISO-8601 with a ``Z`` (the SDK parses a naive date as naive).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from app.compat.customvision.domain import GENERAL_DOMAIN, project_uuid
from app.db.models import Collection


class CamelModel(BaseModel):
    """A request body with camelCase keys; unknown keys are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ImageFileCreateEntry(CamelModel):
    name: str | None = None
    contents: str = ""
    tag_ids: list[str] | None = None
    regions: list[dict] | None = None


class ImageFileCreateBatch(CamelModel):
    images: list[ImageFileCreateEntry] = []
    tag_ids: list[str] | None = None
    metadata: dict[str, str] | None = None


class ImageUrlCreateEntry(CamelModel):
    url: str
    tag_ids: list[str] | None = None
    regions: list[dict] | None = None


class ImageUrlCreateBatch(CamelModel):
    images: list[ImageUrlCreateEntry] = []
    tag_ids: list[str] | None = None
    metadata: dict[str, str] | None = None


class ImageUrl(CamelModel):
    url: str


class ImageTag(CamelModel):
    image_id: str
    tag_id: str


class ImageTagCreateBatch(CamelModel):
    tags: list[ImageTag] = []


class ProjectSettingsUpdate(CamelModel):
    domain_id: str | None = None
    classification_type: str | None = None
    target_export_platforms: list[str] | None = None


class ProjectUpdate(CamelModel):
    name: str | None = None
    description: str | None = None
    settings: ProjectSettingsUpdate | None = None


class TagUpdate(CamelModel):
    name: str | None = None
    description: str | None = None
    type: str | None = None


class IterationUpdate(CamelModel):
    name: str = ""


class TrainingParameters(CamelModel):
    selected_tags: list[str] | None = None
    custom_base_model_info: dict | None = None


def iso(value: datetime | None) -> str | None:
    """``2026-11-23T16:23:14.427Z`` (UTC, milliseconds)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def encode(value: Any) -> Any:
    """JSON-ready data: datetimes as ``...Z`` strings, recursively."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    return value


def csv(value: str | None) -> list[str]:
    """A comma-separated query value as a list (msrest sends lists that way)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


_PROJECT_STATUS = {"ready": "Succeeded", "importing": "Importing", "failed": "Failed"}


def project_json(collection: Collection) -> dict:
    """A collection as a Custom Vision ``Project``."""
    extra = collection.extra or {}
    return {
        "id": project_uuid(collection.id),
        "name": collection.name,
        "description": collection.description or "",
        "settings": {
            "domainId": extra.get("domainId") or GENERAL_DOMAIN,
            "classificationType": extra.get("classificationType") or "Multiclass",
            "targetExportPlatforms": extra.get("targetExportPlatforms") or [],
            "useNegativeSet": False,
            "detectionParameters": None,
            "imageProcessingSettings": None,
            "exportModelContainerUri": None,
            "notificationQueueUri": None,
        },
        "created": iso(collection.created_at),
        "lastModified": iso(collection.created_at),
        "thumbnailUri": None,
        "drModeEnabled": False,
        "status": _PROJECT_STATUS.get(collection.status, "Succeeded"),
    }


def image_json(view: dict, base_url: str) -> dict:
    """An image view from the service as a Custom Vision ``Image`` (absolute URLs)."""
    url = base_url.rstrip("/") + view["url"]
    return encode(
        {
            "id": view["id"],
            "created": view["created"],
            "width": view["width"],
            "height": view["height"],
            "resizedImageUri": url,
            "thumbnailUri": url,
            "originalImageUri": url,
            "tags": view["tags"],
            "regions": None,
            "metadata": None,
        }
    )
