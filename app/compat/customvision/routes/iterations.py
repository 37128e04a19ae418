"""Custom Vision training API, part 3: train, iterations, performance, publish, quick test."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.compat.customvision import iterations, publishing
from app.compat.customvision.routes.common import TrainingUser, no_content, ok
from app.compat.customvision.routes.multipart import image_parts, raw_body
from app.compat.customvision.routes.schemas import ImageUrl, IterationUpdate, TrainingParameters
from app.compat.customvision.routes.training import training_router
from app.deps import SessionDep
from app.services.ml.inference import fetch_image_url

router = training_router()
RawBody = Annotated[bytes, Depends(raw_body)]


@router.post("/projects/{project_id}/train", name="customvision:train")
def train_project(
    project_id: str,
    session: SessionDep,
    user: TrainingUser,
    body: TrainingParameters | None = None,
    training_type: str | None = Query(None, alias="trainingType"),
    reserved_budget_in_hours: int = Query(0, alias="reservedBudgetInHours"),
    force_train: bool = Query(False, alias="forceTrain"),
):
    """Start training the next iteration (a Crowdlab training job); poll the iteration."""
    collection, model = iterations.train_project(
        session,
        requester=user,
        project_id=project_id,
        training_type=training_type,
        reserved_budget_in_hours=reserved_budget_in_hours,
        force_train=force_train,
    )
    return ok(iterations.iteration_view(collection, model))


@router.get("/projects/{project_id}/iterations", name="customvision:iterations")
def get_iterations(project_id: str, session: SessionDep, user: TrainingUser):
    """The project's iterations, oldest first."""
    collection, models = iterations.list_iterations(session, requester=user, project_id=project_id)
    return ok([iterations.iteration_view(collection, m) for m in models])


@router.get("/projects/{project_id}/iterations/{iteration_id}", name="customvision:iteration")
def get_iteration(project_id: str, iteration_id: str, session: SessionDep, user: TrainingUser):
    """One iteration: ``Training``, then ``Completed`` or ``Failed`` (with the reason)."""
    collection, model = iterations.get_iteration(
        session, requester=user, project_id=project_id, iteration_id=iteration_id
    )
    return ok(iterations.iteration_view(collection, model))


@router.patch(
    "/projects/{project_id}/iterations/{iteration_id}", name="customvision:iteration_update"
)
def update_iteration(
    project_id: str,
    iteration_id: str,
    body: IterationUpdate,
    session: SessionDep,
    user: TrainingUser,
):
    """Rename an iteration."""
    collection, model = iterations.update_iteration(
        session, requester=user, project_id=project_id, iteration_id=iteration_id, name=body.name
    )
    return ok(iterations.iteration_view(collection, model))


@router.delete(
    "/projects/{project_id}/iterations/{iteration_id}", name="customvision:iteration_delete"
)
def delete_iteration(project_id: str, iteration_id: str, session: SessionDep, user: TrainingUser):
    """Delete an unpublished, finished iteration (204)."""
    iterations.delete_iteration(
        session, requester=user, project_id=project_id, iteration_id=iteration_id
    )
    return no_content()


@router.get(
    "/projects/{project_id}/iterations/{iteration_id}/performance",
    name="customvision:iteration_performance",
)
def get_iteration_performance(
    project_id: str,
    iteration_id: str,
    session: SessionDep,
    user: TrainingUser,
    threshold: float | None = None,
    overlap_threshold: float | None = Query(None, alias="overlapThreshold"),
):
    """Precision, recall and average precision, overall and per tag, at a threshold."""
    return ok(
        iterations.get_performance(
            session,
            requester=user,
            project_id=project_id,
            iteration_id=iteration_id,
            threshold=threshold,
        )
    )


@router.post(
    "/projects/{project_id}/iterations/{iteration_id}/publish", name="customvision:publish"
)
def publish_iteration(
    project_id: str,
    iteration_id: str,
    session: SessionDep,
    user: TrainingUser,
    publish_name: str = Query(..., alias="publishName"),
    prediction_id: str = Query(..., alias="predictionId"),
    overwrite: bool = False,
):
    """Publish an iteration under a name of the project (idempotent); answers ``true``."""
    publishing.publish_iteration(
        session,
        requester=user,
        project_id=project_id,
        iteration_id=iteration_id,
        publish_name=publish_name,
        prediction_id=prediction_id,
        overwrite=overwrite,
    )
    return ok(True)


@router.delete(
    "/projects/{project_id}/iterations/{iteration_id}/publish", name="customvision:unpublish"
)
def unpublish_iteration(
    project_id: str, iteration_id: str, session: SessionDep, user: TrainingUser
):
    """Withdraw a published iteration (204)."""
    publishing.unpublish_iteration(
        session, requester=user, project_id=project_id, iteration_id=iteration_id
    )
    return no_content()


@router.post("/projects/{project_id}/quicktest/image", name="customvision:quicktest_image")
async def quick_test_image(
    project_id: str,
    request: Request,
    body: RawBody,
    session: SessionDep,
    user: TrainingUser,
    iteration_id: str | None = Query(None, alias="iterationId"),
    store: bool = True,
):
    """Classify an uploaded image with an iteration (the latest trained one by default)."""
    data = image_parts(request.headers.get("content-type", ""), body)[0][1]
    result = await run_in_threadpool(
        publishing.quick_test_image,
        session,
        requester=user,
        project_id=project_id,
        data=data,
        iteration_id=iteration_id,
    )
    return ok(result)


@router.post("/projects/{project_id}/quicktest/url", name="customvision:quicktest_url")
def quick_test_image_url(
    project_id: str,
    body: ImageUrl,
    session: SessionDep,
    user: TrainingUser,
    iteration_id: str | None = Query(None, alias="iterationId"),
    store: bool = True,
):
    """Classify the image at a URL with an iteration."""
    result = publishing.quick_test_image(
        session,
        requester=user,
        project_id=project_id,
        data=lambda: fetch_image_url(body.url),  # fetched once the project is checked
        iteration_id=iteration_id,
    )
    return ok(result)
