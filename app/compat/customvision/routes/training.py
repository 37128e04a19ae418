"""Custom Vision training API, part 1: domains, projects and tags."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from app.compat.customvision import domain as cv
from app.compat.customvision.routes.common import (
    CustomVisionRoute,
    TrainingUser,
    check_version,
    no_content,
    ok,
)
from app.compat.customvision.routes.schemas import ProjectUpdate, TagUpdate, csv, project_json
from app.deps import SessionDep

PREFIX = "/customvision/{version}/training"


def training_router() -> APIRouter:
    """A router under the training base path with Custom Vision errors."""
    return APIRouter(
        prefix=PREFIX,
        tags=["customvision"],
        route_class=CustomVisionRoute,
        dependencies=[Depends(check_version)],
    )


router = training_router()


@router.get("/domains", name="customvision:domains")
def get_domains(_user: TrainingUser):
    """Azure's domains (classification ones are enabled)."""
    return ok(cv.list_domains())


@router.get("/domains/{domain_id}", name="customvision:domain")
def get_domain(domain_id: str, _user: TrainingUser):
    """One domain."""
    return ok(cv.get_domain(domain_id))


@router.get("/projects", name="customvision:projects")
def get_projects(session: SessionDep, user: TrainingUser):
    """Every collection of the caller, as projects."""
    return ok([project_json(c) for c in cv.list_projects(session, requester=user)])


@router.post("/projects", name="customvision:projects_create")
def create_project(
    session: SessionDep,
    user: TrainingUser,
    name: str = Query(...),
    description: str | None = Query(None),
    domain_id: str | None = Query(None, alias="domainId"),
    classification_type: str | None = Query(None, alias="classificationType"),
    target_export_platforms: str | None = Query(None, alias="targetExportPlatforms"),
):
    """Create a (Multiclass) project: an empty Crowdlab collection."""
    collection = cv.create_project(
        session,
        requester=user,
        name=name,
        description=description,
        domain_id=domain_id,
        classification_type=classification_type,
        target_export_platforms=csv(target_export_platforms),
    )
    return ok(project_json(collection))


@router.get("/projects/{project_id}", name="customvision:project")
def get_project(project_id: str, session: SessionDep, user: TrainingUser):
    """One project."""
    return ok(project_json(cv.get_project(session, requester=user, project_id=project_id)))


@router.patch("/projects/{project_id}", name="customvision:project_update")
def update_project(
    project_id: str,
    body: ProjectUpdate,
    session: SessionDep,
    user: TrainingUser,
):
    """Rename a project, change its description, domain or target export platforms."""
    settings = body.settings
    collection = cv.update_project(
        session,
        requester=user,
        project_id=project_id,
        name=body.name,
        description=body.description,
        domain_id=settings.domain_id if settings else None,
        classification_type=settings.classification_type if settings else None,
        target_export_platforms=settings.target_export_platforms if settings else None,
    )
    return ok(project_json(collection))


@router.delete("/projects/{project_id}", name="customvision:project_delete")
def delete_project(project_id: str, session: SessionDep, user: TrainingUser):
    """Delete a project with its images and iterations (204)."""
    cv.delete_project(session, requester=user, project_id=project_id)
    return no_content()


@router.get("/projects/{project_id}/tags", name="customvision:tags")
def get_tags(
    project_id: str,
    session: SessionDep,
    user: TrainingUser,
    iteration_id: str | None = Query(None, alias="iterationId"),
):
    """The project's tags with their image counts."""
    return ok(cv.list_tags(session, requester=user, project_id=project_id))


@router.post("/projects/{project_id}/tags", name="customvision:tags_create")
def create_tag(
    project_id: str,
    session: SessionDep,
    user: TrainingUser,
    name: str = Query(...),
    description: str | None = Query(None),
    tag_type: str | None = Query(None, alias="type"),
):
    """Add a tag (a class of the collection)."""
    tag = cv.create_tag(
        session,
        requester=user,
        project_id=project_id,
        name=name,
        description=description,
        tag_type=tag_type,
    )
    return ok(tag)


@router.get("/projects/{project_id}/tags/{tag_id}", name="customvision:tag")
def get_tag(project_id: str, tag_id: str, session: SessionDep, user: TrainingUser):
    """One tag."""
    return ok(cv.get_tag(session, requester=user, project_id=project_id, tag_id=tag_id))


@router.patch("/projects/{project_id}/tags/{tag_id}", name="customvision:tag_update")
def update_tag(
    project_id: str,
    tag_id: str,
    body: TagUpdate,
    session: SessionDep,
    user: TrainingUser,
):
    """Rename a tag or change its description."""
    tag = cv.update_tag(
        session,
        requester=user,
        project_id=project_id,
        tag_id=tag_id,
        name=body.name,
        description=body.description,
        tag_type=body.type,
    )
    return ok(tag)


@router.delete("/projects/{project_id}/tags/{tag_id}", name="customvision:tag_delete")
def delete_tag(project_id: str, tag_id: str, session: SessionDep, user: TrainingUser):
    """Delete a tag; its images stay, untagged (204)."""
    cv.delete_tag(session, requester=user, project_id=project_id, tag_id=tag_id)
    return no_content()
