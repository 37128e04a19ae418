"""Custom Vision training API, part 4: iteration exports and per-image performance."""

from __future__ import annotations

from fastapi import Query, Request
from fastapi.responses import FileResponse

from app.compat.customvision import exports, performance
from app.compat.customvision.domain import CustomVisionError
from app.compat.customvision.routes.common import TrainingUser, ok, training_user_or_none
from app.compat.customvision.routes.schemas import csv
from app.compat.customvision.routes.training import training_router
from app.deps import SessionDep
from app.services.accounts.users import get_user

router = training_router()


def _download_uri(request: Request, project_id: str, iteration_id: str, model, job) -> str:
    fmt = job.payload["format"]
    platform = next(p for p, f in exports.PLATFORMS.items() if f == fmt)
    url = request.url_for(
        "customvision:export_download",
        version=request.path_params["version"],
        project_id=project_id,
        iteration_id=iteration_id,
    )
    sig = exports.link_token(model, fmt)
    return str(url.include_query_params(platform=platform, sig=sig))


@router.post("/projects/{project_id}/iterations/{iteration_id}/export", name="customvision:export")
def export_iteration(
    project_id: str,
    iteration_id: str,
    request: Request,
    session: SessionDep,
    user: TrainingUser,
    platform: str = Query(...),
    flavor: str | None = Query(None),
):
    """Start exporting a trained iteration (ONNX, compact domains); poll ``get_exports``."""
    model, job = exports.export_iteration(
        session,
        requester=user,
        project_id=project_id,
        iteration_id=iteration_id,
        platform=platform,
        flavor=flavor,
    )
    uri = _download_uri(request, project_id, iteration_id, model, job)
    return ok(exports.export_view(model, job, uri))


@router.get("/projects/{project_id}/iterations/{iteration_id}/export", name="customvision:exports")
def get_exports(
    project_id: str, iteration_id: str, request: Request, session: SessionDep, user: TrainingUser
):
    """The iteration's exports: ``Exporting``, then ``Done`` with a ``downloadUri``."""
    model, jobs = exports.list_exports(
        session, requester=user, project_id=project_id, iteration_id=iteration_id
    )
    uris = [_download_uri(request, project_id, iteration_id, model, job) for job in jobs]
    return ok([exports.export_view(model, job, uri) for job, uri in zip(jobs, uris, strict=True)])


@router.get(
    "/projects/{project_id}/iterations/{iteration_id}/export/download",
    name="customvision:export_download",
)
def download_export(
    project_id: str,
    iteration_id: str,
    request: Request,
    session: SessionDep,
    platform: str = Query("ONNX"),
    sig: str | None = Query(None),
):
    """The exported file: with the Training-Key header, or by the URI's own signature."""
    user = training_user_or_none(request, session)
    if user is None:
        fmt = exports.PLATFORMS.get(platform)
        model = None
        if sig and fmt:
            model = exports.model_for_link_token(session, sig, fmt)
        if model is None:
            raise CustomVisionError(
                "Unauthorized",
                "Send the Training-Key header, or use the downloadUri before it expires.",
                status_code=401,
            )
        user = get_user(session, model.owner_id)
    model, path, name = exports.export_download(
        session, requester=user, project_id=project_id, iteration_id=iteration_id, platform=platform
    )
    return FileResponse(path, media_type="application/octet-stream", filename=name)


@router.get(
    "/projects/{project_id}/iterations/{iteration_id}/performance/images",
    name="customvision:image_performances",
)
def get_image_performances(
    project_id: str,
    iteration_id: str,
    request: Request,
    session: SessionDep,
    user: TrainingUser,
    tag_ids: str | None = Query(None, alias="tagIds"),
    order_by: str | None = Query(None, alias="orderBy"),
    take: int = 50,
    skip: int = 0,
):
    """The validation images of an iteration with their predicted tags and probabilities."""
    rows = performance.list_image_performances(
        session,
        requester=user,
        project_id=project_id,
        iteration_id=iteration_id,
        tag_ids=csv(tag_ids) or None,
        order_by=order_by or "Newest",
        take=take,
        skip=skip,
    )
    base = str(request.base_url).rstrip("/")
    return ok([performance.image_performance_json(row, base) for row in rows])


@router.get(
    "/projects/{project_id}/iterations/{iteration_id}/performance/images/count",
    name="customvision:image_performance_count",
)
def get_image_performance_count(
    project_id: str,
    iteration_id: str,
    session: SessionDep,
    user: TrainingUser,
    tag_ids: str | None = Query(None, alias="tagIds"),
):
    """How many validation images (of some tags) have predictions for the iteration."""
    return ok(
        performance.count_image_performances(
            session,
            requester=user,
            project_id=project_id,
            iteration_id=iteration_id,
            tag_ids=csv(tag_ids) or None,
        )
    )
