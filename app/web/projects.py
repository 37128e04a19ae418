"""Requester console: create, view, edit, clone and archive projects, with a live task
preview."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import Conflict, ValidationFailed
from app.services.projects import lists, pools, project_clone, projects
from app.services.projects.projects import OptionInput
from app.web.lists import ListView, list_params
from app.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

BLANK_ROWS = 2


def _rows(options: list[OptionInput]) -> list[OptionInput]:
    """The option rows a form shows: the given ones plus a few blank ones (at least 3 rows)."""
    rows = list(options) + [OptionInput("", "")] * BLANK_ROWS
    while len(rows) < 3:
        rows.append(OptionInput("", ""))
    return rows[: projects.MAX_OPTIONS]


def _form_options(
    labels: list[str], values: list[str], hotkeys: list[str] | None = None
) -> list[OptionInput]:
    n = max(len(labels), len(values))
    rows = zip(
        labels + [""] * (n - len(labels)),
        values + [""] * (n - len(values)),
        (hotkeys or []) + [""] * (n - len(hotkeys or [])),
        strict=False,
    )
    return [
        OptionInput(label.strip(), value.strip(), key.strip())
        for label, value, key in rows
        if label or value
    ]


def _keyed(options: list[OptionInput]) -> list[OptionInput]:
    """The options with the hotkeys labelers will get (none shown while they clash)."""
    options = [o for o in options if o.value]
    try:
        keys = projects.assign_hotkeys(options)
    except ValidationFailed:
        keys = [o.hotkey or None for o in options]
    return [OptionInput(o.label, o.value, k or "") for o, k in zip(options, keys, strict=True)]


def _form(request: Request, *, project=None, values: dict, options, errors=None, message=None):
    return render(
        request,
        "requester/projects/form.html",
        {
            "project": project,
            "values": values,
            "option_rows": _rows(options),
            "errors": errors or {},
            "message": message,
            "preview": {**values, "options": _keyed(options)},
            "nav": "projects",
        },
        status_code=422 if errors or message else 200,
    )


@router.get("/requester/projects/new", name="projects:new")
def new_project(request: Request, user: CurrentRequester):
    """The empty project form."""
    return _form(request, values={}, options=[])


@router.post("/requester/projects", name="projects:create")
def create_project(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    name: str = Form(""),
    public_description: str = Form(""),
    instructions: str = Form(""),
    question: str = Form(""),
    option_label: list[str] = Form([]),
    option_value: list[str] = Form([]),
    option_hotkey: list[str] = Form([]),
    answer_type: str = Form("single"),
    allow_none: str = Form(""),
):
    """Create the project, or show the form again with inline errors."""
    values = {
        "name": name,
        "public_description": public_description,
        "instructions": instructions,
        "question": question,
        "answer_type": answer_type,
        "allow_none": bool(allow_none),
    }
    options = _form_options(option_label, option_value, option_hotkey)
    try:
        project = projects.create_project(session, requester=user, options=options, **values)
    except ValidationFailed as exc:
        return _form(
            request, values=values, options=options, errors=exc.errors, message=exc.message
        )
    flash(request, f"Project “{project.name}” created. Now add a pool.", "success")
    return RedirectResponse(
        request.url_for("projects:detail", project_id=project.id), status_code=303
    )


@router.post("/requester/projects/preview", name="projects:preview")
def preview(
    request: Request,
    user: CurrentRequester,
    name: str = Form(""),
    public_description: str = Form(""),
    instructions: str = Form(""),
    question: str = Form(""),
    option_label: list[str] = Form([]),
    option_value: list[str] = Form([]),
    option_hotkey: list[str] = Form([]),
    answer_type: str = Form("single"),
    allow_none: str = Form(""),
):
    """The task as labelers will see it, from the form being edited (htmx)."""
    options = _keyed(_form_options(option_label, option_value, option_hotkey))
    return render(
        request,
        "requester/projects/_preview.html",
        {
            "preview": {
                "name": name,
                "instructions": instructions,
                "question": question,
                "options": options,
                "answer_type": answer_type,
                "allow_none": bool(allow_none),
            }
        },
    )


@router.get("/requester/projects/{project_id}", name="projects:detail")
def project_detail(request: Request, session: SessionDep, user: CurrentRequester, project_id: int):
    """The project with its pools, options, instructions and a task preview."""
    project = projects.get_project(session, requester=user, project_id=project_id)
    options = projects.list_options(session, project=project)
    params = list_params(request, lists.POOL_LIST)
    page = lists.page_pools(session, requester=user, project_id=project.id, params=params)
    counts = {pool.id: pools.task_counts(session, pool=pool, recent=True) for pool in page.items}
    return render(
        request,
        "requester/projects/detail.html",
        {
            "project": project,
            "options": options,
            "pools": ListView(request, page, target="pools"),
            "counts": counts,
            "preview": {
                "name": project.name,
                "instructions": project.instructions,
                "question": project.question,
                "options": options,
                "answer_type": project.answer_type,
                "allow_none": project.allow_none,
            },
            "options_frozen": projects.has_open_pool(session, project=project),
        },
    )


@router.post("/requester/projects/{project_id}/clone", name="projects:clone")
def clone_project(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    project_id: int,
    with_pools: Annotated[str, Form()] = "",
):
    """A copy of the project (options, instructions, rules; pools' settings when asked)."""
    clone = project_clone.clone_project(
        session, requester=user, project_id=project_id, with_pools=bool(with_pools)
    )
    pools_note = f" with {len(clone.pools)} draft pool(s), no tasks" if with_pools else ""
    flash(request, f"Cloned into “{clone.project.name}”{pools_note}.", "success")
    url = request.url_for("projects:detail", project_id=clone.project.id)
    return RedirectResponse(url, status_code=303)


@router.get("/requester/projects/{project_id}/edit", name="projects:edit")
def edit_project(request: Request, session: SessionDep, user: CurrentRequester, project_id: int):
    """The project form, filled in."""
    project = projects.get_project(session, requester=user, project_id=project_id)
    options = [
        OptionInput(o.label, o.value, o.hotkey or "")
        for o in projects.list_options(session, project=project)
    ]
    values = {
        "name": project.name,
        "public_description": project.public_description,
        "instructions": project.instructions,
        "question": project.question,
        "answer_type": project.answer_type,
        "allow_none": project.allow_none,
    }
    return _form(request, project=project, values=values, options=options)


@router.post("/requester/projects/{project_id}/edit", name="projects:update")
def update_project(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    project_id: int,
    name: str = Form(""),
    public_description: str = Form(""),
    instructions: str = Form(""),
    question: str = Form(""),
    option_label: list[str] = Form([]),
    option_value: list[str] = Form([]),
    option_hotkey: list[str] = Form([]),
    answer_type: str = Form("single"),
    allow_none: str = Form(""),
):
    """Save the project; options stay frozen while one of its pools is open."""
    project = projects.get_project(session, requester=user, project_id=project_id)
    values = {
        "name": name,
        "public_description": public_description,
        "instructions": instructions,
        "question": question,
        "answer_type": answer_type,
        "allow_none": bool(allow_none),
    }
    options = _form_options(option_label, option_value, option_hotkey)
    try:
        projects.update_project(
            session, requester=user, project_id=project.id, options=options, **values
        )
    except (ValidationFailed, Conflict) as exc:
        errors = getattr(exc, "errors", {})
        return _form(
            request,
            project=project,
            values=values,
            options=options,
            errors=errors,
            message=exc.message,
        )
    flash(request, "Project saved.", "success")
    return RedirectResponse(
        request.url_for("projects:detail", project_id=project.id), status_code=303
    )


@router.post("/requester/projects/{project_id}/archive", name="projects:archive")
def archive_project(request: Request, session: SessionDep, user: CurrentRequester, project_id: int):
    """Archive the project (refused while a pool is open)."""
    project = projects.archive_project(session, requester=user, project_id=project_id)
    flash(request, f"Project “{project.name}” archived.", "success")
    return RedirectResponse(request.url_for("requester:home"), status_code=303)
