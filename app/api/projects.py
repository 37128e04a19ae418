"""Projects API in Toloka's v1 shape (``/api/v1/projects``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from app.api.operations import operation_json
from app.api.schemas.common import clamp_limit, iso, parse_filter_id, parse_id, public_id
from app.api.schemas.projects import ProjectBody
from app.db.models import Project, ProjectStatus
from app.deps import ApiRequester, SessionDep
from app.services.jobs.operations import record_operation
from app.services.projects import projects
from app.services.projects.projects import OptionInput

router = APIRouter(prefix="/api/v1", tags=["projects"])


def project_json(session, project: Project) -> dict[str, Any]:
    """A project as Toloka returns it, plus Crowdlab's ``answer_options`` and ``question``."""
    options = projects.list_options(session, project=project)
    return {
        "id": public_id(project.id),
        "public_name": project.name,
        "public_description": project.public_description,
        "public_instructions": project.instructions,
        "private_comment": project.private_comment,
        "task_spec": project.task_spec,
        "assignments_issuing_type": "AUTOMATED",
        "status": project.status.upper(),
        "created": iso(project.created_at),
        "question": project.question,
        "answer_type": project.answer_type,
        "allow_none": project.allow_none,
        "answer_options": [
            {"label": o.label, "value": o.value, "hotkey": o.hotkey} for o in options
        ],
    }


def _options(body: ProjectBody) -> list[OptionInput]:
    if body.answer_options is not None:
        return [OptionInput(o.label or o.value, o.value) for o in body.answer_options]
    return projects.options_from_task_spec(body.task_spec or {})


def _fields(body: ProjectBody) -> dict[str, Any]:
    answer_type = body.answer_type
    if answer_type is None and body.task_spec:
        answer_type = projects.answer_type_from_task_spec(body.task_spec)
    return {
        "answer_type": answer_type or "single",
        "allow_none": bool(body.allow_none),
        "name": body.public_name,
        "question": body.question or "",
        "public_description": body.public_description,
        "instructions": body.public_instructions,
        "private_comment": body.private_comment,
    }


@router.post("/projects", status_code=201, name="api:projects_create")
def create_project(session: SessionDep, user: ApiRequester, body: ProjectBody) -> dict[str, Any]:
    """Create a project; ``task_spec`` is stored as given (or built from the options)."""
    project = projects.create_project(
        session, requester=user, options=_options(body), task_spec=body.task_spec, **_fields(body)
    )
    return project_json(session, project)


@router.get("/projects", name="api:projects_list")
def list_projects(
    session: SessionDep,
    user: ApiRequester,
    status: str | None = None,
    id_gt: str | None = None,
    limit: int | None = Query(None, ge=1, le=300),
    sort: str = "id",
) -> dict[str, Any]:
    """The caller's projects by id, paged with ``limit`` and ``id_gt``."""
    size = clamp_limit(limit)
    rows = projects.list_projects(
        session, requester=user, id_gt=parse_filter_id(id_gt, name="id_gt"), limit=None
    )
    if status:
        rows = [p for p in rows if p.status.upper() == status.upper()]
    if sort.startswith("-"):
        rows.reverse()
    page = rows[:size]
    return {"items": [project_json(session, p) for p in page], "has_more": len(rows) > size}


@router.get("/projects/{project_id}", name="api:projects_get")
def get_project(session: SessionDep, user: ApiRequester, project_id: str) -> dict[str, Any]:
    """One of the caller's projects (someone else's id → 404)."""
    project = projects.get_project(
        session, requester=user, project_id=parse_id(project_id, what="project")
    )
    return project_json(session, project)


@router.put("/projects/{project_id}", name="api:projects_update")
def update_project(
    session: SessionDep, user: ApiRequester, project_id: str, body: ProjectBody
) -> dict[str, Any]:
    """Replace a project's fields; options are frozen while one of its pools is open."""
    project = projects.get_project(
        session, requester=user, project_id=parse_id(project_id, what="project")
    )
    options = _options(body)
    fields = _fields(body)
    if body.answer_type is None and not body.task_spec:
        fields["answer_type"] = None  # kept as it is
    if body.allow_none is None:
        fields["allow_none"] = None
    project = projects.update_project(
        session,
        requester=user,
        project_id=project.id,
        options=options or None,
        task_spec=body.task_spec,
        **fields,
    )
    return project_json(session, project)


@router.post("/projects/{project_id}/archive", name="api:projects_archive")
def archive_project(session: SessionDep, user: ApiRequester, project_id: str) -> JSONResponse:
    """Archive a project; answers a finished ``PROJECT.ARCHIVE`` operation."""
    project = projects.get_project(
        session, requester=user, project_id=parse_id(project_id, what="project")
    )
    if project.status == ProjectStatus.ARCHIVED:
        return Response(status_code=204)
    projects.archive_project(session, requester=user, project_id=project.id)
    job = record_operation(
        session,
        owner=user,
        operation_type="PROJECT.ARCHIVE",
        parameters={"project_id": public_id(project.id)},
    )
    session.commit()
    return JSONResponse(operation_json(job), status_code=202)
