"""JSON API for labelers: available pools, take a suite, read it, submit, skip; the
captcha a pool may ask for between suites (taking answers 409 ``CAPTCHA_REQUIRED`` then).

Tasks are addressed by their position in the suite (0..n-1); nothing in these payloads
says which task is a control task.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from app.deps import ApiLabeler, SessionDep, api_labeler_session
from app.services.labeling.assignments import (
    assign_next_suite,
    get_assignment,
    list_assignments,
    skip_assignment,
    submit_assignment,
)
from app.services.labeling.available import list_available_pools
from app.services.labeling.captchas import answer_captcha, captcha_image, open_captcha

router = APIRouter(prefix="/api/v1/labeler", tags=["labeler"])


class CaptchaAnswer(BaseModel):
    """The characters read from the captcha's picture."""

    answer: str = Field(default="", max_length=100)


class SubmitBody(BaseModel):
    """Answers keyed by the task's position in the suite: ``{"0": "cat", "1": "dog"}``."""

    # an option value per task; with several answers a list of values (or {value: true})
    answers: dict[str, str | int | list[str] | dict[str, bool] | None] = Field(default_factory=dict)


@router.get("/pools", name="api:labeler:pools")
def pools(session: SessionDep, user: ApiLabeler) -> JSONResponse:
    """Open pools this labeler may take, with price, suite size and suites left."""
    cards = list_available_pools(session, labeler=user)
    return JSONResponse(
        {
            "items": [
                {
                    "id": c.pool_id,
                    "name": c.pool_name,
                    "project": c.project_name,
                    "description": c.description,
                    "instructions": c.instructions,
                    "reward": c.reward_cents / 100,
                    "tasks_per_suite": c.tasks_per_suite,
                    "time_limit_seconds": c.time_limit_seconds,
                    "suites_remaining": c.suites_remaining,
                    "active_suite_id": c.active_assignment_id,
                }
                for c in cards
            ]
        }
    )


@router.post("/pools/{pool_id}/suites", name="api:labeler:take")
async def take_suite(request: Request, pool_id: int) -> JSONResponse:
    """Take a suite (or get back the active one) in a pool. Send the labeler's API token."""
    return JSONResponse(await run_in_threadpool(_take_suite, request, pool_id))


def _take_suite(request: Request, pool_id: int) -> dict:
    with api_labeler_session(request) as (session, user):
        return assign_next_suite(session, labeler=user, pool_id=pool_id).public()


@router.get("/assignments", name="api:labeler:assignments")
def assignments(
    session: SessionDep, user: ApiLabeler, status: str | None = None, limit: int = 100
) -> JSONResponse:
    """The labeler's suites, newest first."""
    rows = list_assignments(session, labeler=user, status=status, limit=min(max(limit, 1), 500))
    return JSONResponse(
        {
            "items": [
                {
                    "id": a.id,
                    "pool_id": a.pool_id,
                    "status": a.status,
                    "reward": a.reward_cents / 100,
                    "created": a.created_at.isoformat(),
                    "expires_at": a.expires_at.isoformat(),
                    "submitted": a.submitted_at.isoformat() if a.submitted_at else None,
                }
                for a in rows
            ]
        }
    )


@router.get("/assignments/{assignment_id}", name="api:labeler:assignment")
def assignment(session: SessionDep, user: ApiLabeler, assignment_id: int) -> JSONResponse:
    """One suite: question, options, and its tasks by position."""
    return JSONResponse(get_assignment(session, labeler=user, assignment_id=assignment_id).public())


@router.post("/assignments/{assignment_id}/submit", name="api:labeler:submit")
async def submit(request: Request, assignment_id: int, body: SubmitBody) -> JSONResponse:
    """Submit every task's answer; repeating a submit returns the first result.
    Send the labeler's API token."""
    return JSONResponse(await run_in_threadpool(_submit, request, assignment_id, body.answers))


def _submit(request: Request, assignment_id: int, answers: dict) -> dict:
    with api_labeler_session(request) as (session, user):
        result = submit_assignment(
            session, labeler=user, assignment_id=assignment_id, answers=answers, by_position=True
        )
        return result.public()


@router.post("/assignments/{assignment_id}/skip", name="api:labeler:skip")
def skip(session: SessionDep, user: ApiLabeler, assignment_id: int) -> JSONResponse:
    """Give an active suite back."""
    row = skip_assignment(session, labeler=user, assignment_id=assignment_id)
    return JSONResponse({"id": row.id, "pool_id": row.pool_id, "status": row.status})


@router.post("/pools/{pool_id}/captcha", name="api:labeler:captcha")
def captcha(request: Request, session: SessionDep, user: ApiLabeler, pool_id: int) -> JSONResponse:
    """The captcha the pool asks for now (409 when none is due): its id and picture URL."""
    row = open_captcha(session, labeler=user, pool_id=pool_id)
    image = request.url_for("api:labeler:captcha_image", captcha_id=row.id)
    return JSONResponse({"id": row.id, "pool_id": row.pool_id, "image_url": str(image)})


@router.get("/captchas/{captcha_id}/image", name="api:labeler:captcha_image")
def captcha_picture(session: SessionDep, user: ApiLabeler, captcha_id: int) -> Response:
    """The captcha's PNG, until it is answered."""
    png = captcha_image(session, labeler=user, captcha_id=captcha_id)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post("/captchas/{captcha_id}/answer", name="api:labeler:captcha_answer")
def captcha_answer(
    session: SessionDep, user: ApiLabeler, captcha_id: int, body: CaptchaAnswer
) -> JSONResponse:
    """Answer once; right or wrong, it counts toward the pool's captcha rules."""
    result = answer_captcha(session, labeler=user, captcha_id=captcha_id, answer=body.answer)
    return JSONResponse(
        {"id": result.captcha_id, "pool_id": result.pool_id, "solved": result.solved}
    )
