"""Custom Vision prediction API: classify an image (upload or URL) with a published iteration.

``/nostore`` variants behave the same: Crowdlab does not keep prediction images.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from app.compat.customvision import publishing
from app.compat.customvision.routes.common import Caller, CustomVisionRoute, check_version, ok
from app.compat.customvision.routes.multipart import image_parts, raw_body
from app.compat.customvision.routes.schemas import ImageUrl
from app.deps import SessionDep
from app.services.ml.inference import fetch_image_url

router = APIRouter(
    prefix="/customvision/{version}/prediction",
    tags=["customvision"],
    route_class=CustomVisionRoute,
    dependencies=[Depends(check_version)],
)
RawBody = Annotated[bytes, Depends(raw_body)]
BASE = "/{project_id}/classify/iterations/{published_name}"


def _classify(session, caller, project_id: str, published_name: str, data) -> dict:
    return publishing.classify_image(
        session,
        requester=caller.user,
        project_id=project_id,
        published_name=published_name,
        data=data,
        only_model_id=caller.only_model_id,
    )


async def _classify_upload(request, body, session, caller, project_id, published_name):
    data = image_parts(request.headers.get("content-type", ""), body)[0][1]
    result = await run_in_threadpool(_classify, session, caller, project_id, published_name, data)
    return ok(result)


@router.post(BASE + "/image", name="customvision:classify_image")
async def classify_image(
    project_id: str,
    published_name: str,
    request: Request,
    body: RawBody,
    session: SessionDep,
    caller: Caller,
    application: str | None = None,
):
    """Classify an uploaded image: every tag with its probability, most probable first."""
    return await _classify_upload(request, body, session, caller, project_id, published_name)


@router.post(BASE + "/image/nostore", name="customvision:classify_image_nostore")
async def classify_image_with_no_store(
    project_id: str,
    published_name: str,
    request: Request,
    body: RawBody,
    session: SessionDep,
    caller: Caller,
    application: str | None = None,
):
    """Classify an uploaded image without keeping it."""
    return await _classify_upload(request, body, session, caller, project_id, published_name)


def _classify_url(session, caller, project_id: str, published_name: str, url: str):
    # the fetch runs after the project and published iteration are found to be the caller's
    return ok(_classify(session, caller, project_id, published_name, lambda: fetch_image_url(url)))


@router.post(BASE + "/url", name="customvision:classify_url")
def classify_image_url(
    project_id: str,
    published_name: str,
    body: ImageUrl,
    session: SessionDep,
    caller: Caller,
    application: str | None = None,
):
    """Classify the image at an http(s) URL."""
    return _classify_url(session, caller, project_id, published_name, body.url)


@router.post(BASE + "/url/nostore", name="customvision:classify_url_nostore")
def classify_image_url_with_no_store(
    project_id: str,
    published_name: str,
    body: ImageUrl,
    session: SessionDep,
    caller: Caller,
    application: str | None = None,
):
    """Classify the image at a URL without keeping it."""
    return _classify_url(session, caller, project_id, published_name, body.url)
