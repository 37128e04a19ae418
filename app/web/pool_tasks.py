"""Requester console: uploads into a pool, the task list, and marking control tasks."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from app.db.models import TaskKind
from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import Conflict, UploadRejected, ValidationFailed
from app.services import answer_sets
from app.services.projects import control_tasks, lists, pools, projects, uploads
from app.web.lists import ListView, list_params
from app.web.templating import flash, is_htmx, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


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
    store_only: str = Form(""),
    skip_bad: str = Form(""),
):
    """Import a TSV, images or a ZIP; a refusal names the rows or files and imports nothing
    (unless "import the good ones" was ticked: the bad ones are then listed). Images can
    be stored only, for a task TSV to name them."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    if kind == "images" and store_only:
        kind = "media"
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
            skip_bad=bool(skip_bad),
        )
    except (UploadRejected, ValidationFailed, Conflict) as exc:
        session.rollback()
        if not is_htmx(request):
            flash(request, exc.message, "error")
            return RedirectResponse(
                request.url_for("pools:detail", pool_id=pool.id), status_code=303
            )
        error = {
            "message": exc.message,
            "problems": getattr(exc, "problems", []),
            "failures": exc.payload.get("failures", []),
        }
        return render(
            request,
            "requester/pools/_upload_result.html",
            {"error": error},
            status_code=exc.status_code,
        )
    if outcome.job is not None:
        if is_htmx(request):  # its progress, or (done already) what it did
            context = _report_context(outcome.job)
            return render(request, "requester/pools/_upload_result.html", context)
        return RedirectResponse(
            request.url_for("pool_tasks:upload_report", pool_id=pool.id, job_id=outcome.job.id),
            status_code=303,
        )
    result = outcome.result
    if is_htmx(request) and result.skipped_total:  # the page lists what was left out
        return render(request, "requester/pools/_upload_result.html", {"report": result.as_dict()})
    if result.stored_images:
        message = f"Stored {result.stored_images} images: a task TSV can now name them."
    else:
        message = (
            f"Imported {result.total} tasks: {result.created['general']} general, "
            f"{result.created['control']} control, {result.created['training']} training."
        )
    if result.skipped_total:
        names = ", ".join(f["item"] for f in result.skipped[:5])
        message += f" Left out as you chose: {result.skipped_total} ({names})."
    flash(request, message, "success")
    target = str(request.url_for("pools:detail", pool_id=pool.id))
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _report_context(job) -> dict:
    """What the upload report shows: the job running, what it imported, or its refusal."""
    if not job.done:
        return {"job": job}
    result = job.result or {}
    if job.status == "succeeded":
        return {"report": result, "upload_job": job}
    message = job.message or "The upload failed; nothing was imported."
    if job.status == "cancelled":
        message = "The upload was cancelled; nothing was imported."
    return {
        "upload_job": job,
        "error": {
            "message": message,
            "problems": result.get("problems", []),
            "failures": result.get("failures", []),
        },
    }


@router.get("/requester/pools/{pool_id}/uploads/{job_id}", name="pool_tasks:upload_report")
def upload_report(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, job_id: int
):
    """A background upload: its progress, then what it imported and each row or file it
    left out or refused (row, URL or file name, reason). Polled while it runs."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    job = uploads.get_upload_job(session, requester=user, pool_id=pool.id, job_id=job_id)
    context = _report_context(job)
    if is_htmx(request):
        return render(request, "requester/pools/_upload_result.html", context)
    page = {"pool": pool, "upload": job, **context}
    return render(request, "requester/pools/upload.html", page)


@router.get("/requester/pools/{pool_id}/tasks", name="pool_tasks:list")
def task_list(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    pool_id: int,
    kind: str = "",
):
    """The pool's tasks with images, their kind and correct answers, and the distribution."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    kind = kind if kind in {k.value for k in TaskKind} else ""
    params = list_params(request, lists.TASK_LIST)
    page = lists.page_tasks(session, requester=user, pool_id=pool.id, kind=kind, params=params)
    project = projects.get_project(session, requester=user, project_id=pool.project_id)
    return render(
        request,
        "requester/pools/tasks.html",
        {
            "pool": pool,
            "project": project,
            "tasks": ListView(request, page, target="tasks", filters={"kind": kind}),
            "kind": kind,
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
