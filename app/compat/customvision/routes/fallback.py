"""Custom Vision requests no route serves: Azure's error shape, naming what is missing.

Mounted last. An operation of the SDK that Crowdlab does not implement gets
``400 BadRequestNotSupported`` naming the operation; any other path under
``/customvision/`` gets ``404 NotFound`` naming the method and path. Never a bare
``{"detail": "Not Found"}``, which the SDK turns into a message without a code.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request

from app.compat.customvision.routes.common import CustomVisionRoute, error_response

_ID = r"[^/]+"
# (method, path under training/ or prediction/, SDK operation, why it is not served)
UNSUPPORTED = [
    ("GET", "training/projects/{p}/artifacts", "get_artifact", "no artifact storage"),
    ("GET", "training/projects/{p}/export", "export_project", "projects are not portable"),
    ("POST", "training/projects/import", "import_project", "projects are not portable"),
    ("POST", "training/projects/{p}/images/{p}/regionproposals", "get_image_region_proposals",
     "object detection is not supported"),
    ("POST", "training/projects/{p}/images/metadata", "update_image_metadata",
     "image metadata is not stored"),
    ("POST", "training/projects/{p}/images/predictions", "create_images_from_predictions",
     "predictions are not stored as images"),
    ("POST", "training/projects/{p}/images/regions", "create_image_regions",
     "object detection is not supported"),
    ("DELETE", "training/projects/{p}/images/regions", "delete_image_regions",
     "object detection is not supported"),
    ("POST", "training/projects/{p}/images/suggested", "query_suggested_images",
     "suggested tags are not supported"),
    ("POST", "training/projects/{p}/images/suggested/count", "query_suggested_image_count",
     "suggested tags are not supported"),
    ("POST", "training/projects/{p}/tagsandregions/suggestions", "suggest_tags_and_regions",
     "suggested tags are not supported"),
    ("DELETE", "training/projects/{p}/predictions", "delete_prediction",
     "predictions are not stored"),
    ("POST", "training/projects/{p}/predictions/query", "query_predictions",
     "predictions are not stored"),
    ("POST", "prediction/{p}/detect/iterations/{p}/image", "detect_image",
     "object detection is not supported"),
    ("POST", "prediction/{p}/detect/iterations/{p}/image/nostore", "detect_image_with_no_store",
     "object detection is not supported"),
    ("POST", "prediction/{p}/detect/iterations/{p}/url", "detect_image_url",
     "object detection is not supported"),
    ("POST", "prediction/{p}/detect/iterations/{p}/url/nostore", "detect_image_url_with_no_store",
     "object detection is not supported"),
]  # fmt: skip
_PATTERNS = [
    (method, re.compile(r"^" + path.replace("{p}", _ID) + r"/?$"), operation, why)
    for method, path, operation, why in UNSUPPORTED
]
_BASE = re.compile(r"^/customvision/v3\.\d+(?:-preview)?/(.*)$")

router = APIRouter(route_class=CustomVisionRoute, include_in_schema=False)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def unsupported_operation(method: str, path: str) -> tuple[str, str] | None:
    """``(SDK operation, reason)`` of a Custom Vision request Crowdlab does not serve."""
    match = _BASE.match(path)
    if match is None:
        return None
    rest = match.group(1)
    for wanted, pattern, operation, why in _PATTERNS:
        if wanted == method and pattern.match(rest):
            return operation, why
    return None


@router.api_route("/customvision/{rest:path}", methods=METHODS, name="customvision:fallback")
def not_served(rest: str, request: Request):
    """Answer what no Custom Vision route serves in Azure's shape."""
    found = unsupported_operation(request.method, request.url.path)
    if found is not None:
        operation, why = found
        return error_response(
            400,
            "BadRequestNotSupported",
            f"Crowdlab does not support Custom Vision's {operation} ({why}).",
        )
    return error_response(
        404,
        "NotFound",
        f"No Custom Vision operation at {request.method} {request.url.path}; Crowdlab serves "
        "/customvision/v3.x/training/... and /customvision/v3.x/prediction/...",
    )
