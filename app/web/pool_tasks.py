"""Requester console: uploads into a pool, the task list, and marking control tasks."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from app.db.models import TaskKind
from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import Conflict, UploadRejected, ValidationFailed
from app.services import answer_sets
from app.services.projects import control_tasks, pools, projects, uploads
from app.web.templating import flash, is_htmx, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

PAGE_SIZE = 48


@router.post("/requester/pools/{pool_id}/upload", name="pool_tasks:upload")
def upload(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    pool_id: int,
    kind: str = Form("images"),
    files: list[UploadFile] = Form([]),
    general_count: str = Form("0"),
    create_missing_options: str = Form(""),
):
    """Import a TSV, images or a ZIP; a refusal names the rows or files and imports nothing."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    chosen = [f for f in files if f.filename]
    data = [(f.filename, f.file) for f in chosen]  # streamed from the spooled upload
    try:
        count = int(general_count or 0)
    except ValueError:
        count = -1
    try:
        if count < 0:
            raise ValidationFailed("Enter a whole number of general tasks (0 or more).")
        if not data:
            raise UploadRejected("Choose a file to upload first.")
        outcome = uploads.submit_upload(
            session,
            requester=user,
            pool_id=pool.id,
            kind=kind,
            files=data,
            general_count=count,
            create_missing_options=bool(create_missing_options),
        )
    except (UploadRejected, ValidationFailed, Conflict) as exc:
        session.rollback()
        if not is_htmx(request):
            flash(request, exc.message, "error")
            return RedirectResponse(
                request.url_for("pools:detail", pool_id=pool.id), status_code=303
            )
        problems = getattr(exc, "problems", [])
        return render(
            request,
            "requester/pools/_upload_result.html",
            {"error": {"message": exc.message, "problems": problems}},
            status_code=exc.status_code,
        )
    if outcome.job is not None and is_htmx(request):
        return render(request, "requester/pools/_upload_result.html", {"job": outcome.job})
    if outcome.job is not None:
        flash(request, "Large upload: importing in the background.", "info")
    else:
        result = outcome.result
        flash(
            request,
            f"Imported {result.total} tasks: {result.created['general']} general, "
            f"{result.created['control']} control, {result.created['training']} training.",
            "success",
        )
    target = str(request.url_for("pools:detail", pool_id=pool.id))
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


@router.get("/requester/pools/{pool_id}/tasks", name="pool_tasks:list")
def task_list(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    pool_id: int,
    kind: str = "",
    page: int = 1,
):
    """The pool's tasks with images, their kind and correct answers, and the distribution."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    kind = kind if kind in {k.value for k in TaskKind} else ""
    page = max(page, 1)
    tasks, total = control_tasks.list_tasks(
        session,
        requester=user,
        pool_id=pool.id,
        kind=kind or None,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    project = projects.get_project(session, requester=user, project_id=pool.project_id)
    return render(
        request,
        "requester/pools/tasks.html",
        {
            "pool": pool,
            "project": project,
            "tasks": tasks,
            "kind": kind,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "total": total,
            "options": projects.list_options(session, project=project),
            "distribution": control_tasks.control_distribution(
                session, requester=user, pool_id=pool.id
            ),
        },
    )


@router.get("/requester/pools/{pool_id}/tasks/{task_id}", name="pool_tasks:mark")
def mark_page(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, task_id: int
):
    """One task, large, with the options to mark it as a control task."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    task = control_tasks.get_task(session, requester=user, task_id=task_id)
    if task.pool_id != pool.id:
        return RedirectResponse(
            request.url_for("pool_tasks:list", pool_id=pool.id), status_code=303
        )
    project = projects.get_project(session, requester=user, project_id=pool.project_id)
    return render(
        request,
        "requester/pools/task.html",
        {
            "pool": pool,
            "task": task,
            "project": project,
            "known_set": answer_sets.decode(task.known_answer) or [],
            "options": projects.list_options(session, project=project),
            "distribution": control_tasks.control_distribution(
                session, requester=user, pool_id=pool.id
            ),
        },
    )


@router.post("/requester/pools/{pool_id}/tasks/{task_id}/control", name="pool_tasks:control")
def mark_control(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    pool_id: int,
    task_id: int,
    answer: list[str] = Form([]),
    answer_type: str = Form(""),
    go_next: str = Form(""),
):
    """Save the correct answer (several answers: the ticked set); "Save and go to next"
    opens the next unmarked task."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    given = answer if answer_type == "multiple" else (answer[-1] if answer else "")
    task = control_tasks.mark_control(session, requester=user, task_id=task_id, answer=given)
    answer = task.known_answer
    if go_next:
        following = control_tasks.next_task(session, requester=user, pool_id=pool.id, after=task)
        if following is not None:
            return RedirectResponse(
                request.url_for("pool_tasks:mark", pool_id=pool.id, task_id=following.id),
                status_code=303,
            )
        flash(request, "That was the last unmarked task.", "info")
    else:
        flash(request, f"Task marked as a control task ({answer}).", "success")
    return RedirectResponse(request.url_for("pool_tasks:list", pool_id=pool.id), status_code=303)


@router.post("/requester/pools/{pool_id}/tasks/{task_id}/unmark", name="pool_tasks:unmark")
def unmark_control(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, task_id: int
):
    """Make a control task a general task again."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    control_tasks.unmark_control(session, requester=user, task_id=task_id)
    flash(request, "The task is a general task again.", "success")
    return RedirectResponse(request.url_for("pool_tasks:list", pool_id=pool.id), status_code=303)
