"""Custom Vision training API, part 2: images (upload, list, count, tag, delete)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.compat.customvision import domain as customvision
from app.compat.customvision import images
from app.compat.customvision.routes.common import TrainingUser, no_content, ok
from app.compat.customvision.routes.multipart import image_parts, raw_body
from app.compat.customvision.routes.schemas import (
    ImageFileCreateBatch,
    ImageTagCreateBatch,
    ImageUrlCreateBatch,
    csv,
    encode,
    image_json,
)
from app.compat.customvision.routes.training import training_router
from app.deps import SessionDep
from app.errors import UploadRejected, ValidationFailed
from app.services.ml.inference import fetch_image_url

router = training_router()
RawBody = Annotated[bytes, Depends(raw_body)]
TAGGING = {"all": "All", "tagged": "Tagged", "untagged": "Untagged"}


def _summary(collection, all_ok: bool, results: list, base_url: str):
    """``ImageCreateSummary``: 200 when every image was created, else 207."""
    body = {
        "isBatchSuccessful": all_ok,
        "images": [
            {
                "sourceUrl": r.source_url,
                "status": r.status,
                "image": image_json(images.image_view(collection, r.item, r.media), base_url)
                if r.item is not None
                else None,
            }
            for r in results
        ],
    }
    return ok(body, status_code=200 if all_ok else 207)


def _create(session, user, project_id: str, new: list, batch_tags, request: Request):
    collection, all_ok, results = images.create_images(
        session, requester=user, project_id=project_id, images=new, batch_tag_ids=batch_tags
    )
    return _summary(collection, all_ok, results, str(request.base_url))


@router.post("/projects/{project_id}/images/files", name="customvision:images_files")
def create_images_from_files(
    project_id: str,
    body: ImageFileCreateBatch,
    request: Request,
    session: SessionDep,
    user: TrainingUser,
):
    """Add images sent as base64 in JSON (tags per image and/or for the batch)."""
    new = []
    for index, entry in enumerate(body.images):
        name = entry.name or f"image-{index + 1}"
        try:
            data = base64.b64decode(entry.contents, validate=True)
            error = None if data else "ErrorImageFormat"
        except (binascii.Error, ValueError):
            data, error = None, "ErrorImageFormat"
        new.append(
            images.NewImage(
                name=name,
                data=data,
                tag_ids=entry.tag_ids or [],
                source_url=f'"{name}"',
                error=error,
            )
        )
    return _create(session, user, project_id, new, body.tag_ids, request)


@router.post("/projects/{project_id}/images", name="customvision:images_data")
async def create_images_from_data(
    project_id: str,
    request: Request,
    body: RawBody,
    session: SessionDep,
    user: TrainingUser,
    tag_ids: str | None = Query(None, alias="tagIds"),
):
    """Add images sent as multipart ``imageData`` parts (or one raw image body)."""
    parts = image_parts(request.headers.get("content-type", ""), body)
    new = [images.NewImage(name=name, data=data) for name, data in parts]
    return await run_in_threadpool(_create, session, user, project_id, new, csv(tag_ids), request)


def _fetch(url: str) -> tuple[bytes | None, str | None]:
    try:
        return fetch_image_url(url), None
    except (UploadRejected, ValidationFailed):
        return None, "ErrorSource"


@router.post("/projects/{project_id}/images/urls", name="customvision:images_urls")
def create_images_from_urls(
    project_id: str,
    body: ImageUrlCreateBatch,
    request: Request,
    session: SessionDep,
    user: TrainingUser,
):
    """Add images the server downloads from http(s) URLs (the project is checked first)."""
    customvision.get_project(session, requester=user, project_id=project_id)
    new = []
    for entry in body.images:
        data, error = _fetch(entry.url)
        new.append(
            images.NewImage(
                name=entry.url.rsplit("/", 1)[-1] or "image",
                data=data,
                tag_ids=entry.tag_ids or [],
                source_url=entry.url,
                error=error,
            )
        )
    return _create(session, user, project_id, new, body.tag_ids, request)


def _list(session, user, project_id, request, tagging, tag_ids, order_by, take, skip):
    collection, rows = images.list_images(
        session,
        requester=user,
        project_id=project_id,
        tagging=TAGGING.get((tagging or "All").lower(), "All"),
        tag_ids=csv(tag_ids),
        order_by=order_by or "Newest",
        take=take,
        skip=skip,
    )
    base = str(request.base_url)
    return ok([image_json(images.image_view(collection, i, m), base) for i, m in rows])


@router.get("/projects/{project_id}/images", name="customvision:images")
def get_images(
    project_id: str,
    request: Request,
    session: SessionDep,
    user: TrainingUser,
    tag_ids: str | None = Query(None, alias="tagIds"),
    tagging_status: str | None = Query(None, alias="taggingStatus"),
    order_by: str | None = Query(None, alias="orderBy"),
    take: int = 50,
    skip: int = 0,
):
    """A page of the project's images."""
    return _list(session, user, project_id, request, tagging_status, tag_ids, order_by, take, skip)


@router.get("/projects/{project_id}/images/tagged", name="customvision:images_tagged")
def get_tagged_images(
    project_id: str,
    request: Request,
    session: SessionDep,
    user: TrainingUser,
    tag_ids: str | None = Query(None, alias="tagIds"),
    order_by: str | None = Query(None, alias="orderBy"),
    take: int = 50,
    skip: int = 0,
):
    """A page of the project's tagged images."""
    return _list(session, user, project_id, request, "Tagged", tag_ids, order_by, take, skip)


@router.get("/projects/{project_id}/images/untagged", name="customvision:images_untagged")
def get_untagged_images(
    project_id: str,
    request: Request,
    session: SessionDep,
    user: TrainingUser,
    order_by: str | None = Query(None, alias="orderBy"),
    take: int = 50,
    skip: int = 0,
):
    """A page of the project's untagged images."""
    return _list(session, user, project_id, request, "Untagged", None, order_by, take, skip)


@router.get("/projects/{project_id}/images/id", name="customvision:images_by_id")
def get_images_by_ids(
    project_id: str,
    request: Request,
    session: SessionDep,
    user: TrainingUser,
    image_ids: str | None = Query(None, alias="imageIds"),
):
    """The project's images with these ids."""
    collection, rows = images.get_images_by_ids(
        session, requester=user, project_id=project_id, image_ids=csv(image_ids)
    )
    base = str(request.base_url)
    return ok([image_json(images.image_view(collection, i, m), base) for i, m in rows])


def _count(session, user, project_id: str, tagging: str, tag_ids: str | None):
    count = images.count_images(
        session,
        requester=user,
        project_id=project_id,
        tagging=TAGGING.get((tagging or "All").lower(), "All"),
        tag_ids=csv(tag_ids),
    )
    return ok(count)


@router.get("/projects/{project_id}/images/count", name="customvision:images_count")
def get_image_count(
    project_id: str,
    session: SessionDep,
    user: TrainingUser,
    tag_ids: str | None = Query(None, alias="tagIds"),
    tagging_status: str | None = Query(None, alias="taggingStatus"),
):
    """How many images the project has."""
    return _count(session, user, project_id, tagging_status, tag_ids)


@router.get("/projects/{project_id}/images/tagged/count", name="customvision:images_tagged_count")
def get_tagged_image_count(
    project_id: str,
    session: SessionDep,
    user: TrainingUser,
    tag_ids: str | None = Query(None, alias="tagIds"),
):
    """How many tagged images the project has."""
    return _count(session, user, project_id, "Tagged", tag_ids)


@router.get(
    "/projects/{project_id}/images/untagged/count", name="customvision:images_untagged_count"
)
def get_untagged_image_count(project_id: str, session: SessionDep, user: TrainingUser):
    """How many untagged images the project has."""
    return _count(session, user, project_id, "Untagged", None)


@router.delete("/projects/{project_id}/images", name="customvision:images_delete")
def delete_images(
    project_id: str,
    session: SessionDep,
    user: TrainingUser,
    image_ids: str | None = Query(None, alias="imageIds"),
    all_images: bool = Query(False, alias="allImages"),
):
    """Remove images from the project (204)."""
    images.delete_images(
        session,
        requester=user,
        project_id=project_id,
        image_ids=csv(image_ids),
        all_images=all_images,
    )
    return no_content()


@router.post("/projects/{project_id}/images/tags", name="customvision:image_tags_create")
def create_image_tags(
    project_id: str, body: ImageTagCreateBatch, session: SessionDep, user: TrainingUser
):
    """Tag images (one tag per image: Multiclass)."""
    summary = images.tag_images(
        session,
        requester=user,
        project_id=project_id,
        pairs=[(t.image_id, t.tag_id) for t in body.tags],
    )
    return ok(
        encode(
            {key: [{"imageId": i, "tagId": t} for i, t in pairs] for key, pairs in summary.items()}
        )
    )


@router.delete("/projects/{project_id}/images/tags", name="customvision:image_tags_delete")
def delete_image_tags(
    project_id: str,
    session: SessionDep,
    user: TrainingUser,
    image_ids: str = Query(..., alias="imageIds"),
    tag_ids: str = Query(..., alias="tagIds"),
):
    """Untag images (204)."""
    images.untag_images(
        session,
        requester=user,
        project_id=project_id,
        image_ids=csv(image_ids),
        tag_ids=csv(tag_ids),
    )
    return no_content()
