"""Per-labeler page (history, ban, unban, bonus, skill), the pool's bans with bulk ban by
file, and the requester's skills."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile

from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import CrowdlabError, UploadRejected, ValidationFailed
from app.services.money import bonuses
from app.services.quality import ban_files, banned_answers, bans, labelers, overlap, skills
from app.services.quality.rules import DURATION_UNITS, SCOPES
from app.web.forms import parse_int, parse_money_cents
from app.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


def _labeler_page(
    request, session, user, pool_id, labeler_id, *, errors=None, values=None, status=200
):
    profile = labelers.get_labeler_profile(
        session, requester=user, pool_id=pool_id, labeler_id=labeler_id
    )
    ctx = {
        "p": profile,
        "pool": profile.pool,
        "scopes": SCOPES,
        "units": DURATION_UNITS,
        "errors": errors or {},
        "values": values or {},
        "now_active": bans.is_active,
        # finished pools where the banned labeler's answers still count: excluding them
        # is the requester's choice, with its cost shown
        "finished": banned_answers.finished_pools_to_review(
            session, requester_id=user.id, labeler_id=labeler_id
        ),
    }
    return render(request, "requester/quality/labeler.html", ctx, status_code=status)


def _back_to_labeler(request: Request, pool_id: int, labeler_id: int) -> RedirectResponse:
    """Redirect (303) to the labeler's page in the pool after a form post."""
    return RedirectResponse(
        request.url_for("quality:labeler", pool_id=pool_id, labeler_id=labeler_id), status_code=303
    )


@router.get("/requester/pools/{pool_id}/labelers/{labeler_id}", name="quality:labeler")
def labeler_page(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, labeler_id: int
):
    """One labeler's suites and figures in the pool, with ban, unban, bonus and skill forms."""
    return _labeler_page(request, session, user, pool_id, labeler_id)


def _ban_fields(form) -> dict:
    unit = str(form.get("duration_unit") or "DAYS")
    duration = None
    if unit != "PERMANENT":
        duration = parse_int(form.get("duration"), field="duration", minimum=1, maximum=100_000)
    return {
        "scope": str(form.get("scope") or "PROJECT"),
        "duration": duration,
        "duration_unit": unit,
        "private_comment": str(form.get("private_comment") or ""),
        "public_comment": str(form.get("public_comment") or ""),
    }


@router.post("/requester/pools/{pool_id}/labelers/{labeler_id}/ban", name="quality:ban")
async def ban(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, labeler_id: int
):
    """Ban the labeler (pool, project or all projects)."""
    form = await request.form()
    try:
        bans.ban_labeler(
            session, requester=user, labeler_id=labeler_id, pool_id=pool_id, **_ban_fields(form)
        )
    except ValidationFailed as exc:
        return _labeler_page(
            request,
            session,
            user,
            pool_id,
            labeler_id,
            errors={"ban": exc.message, **exc.errors},
            values=dict(form),
            status=422,
        )
    finished = banned_answers.finished_pools_to_review(
        session, requester_id=user.id, labeler_id=labeler_id
    )
    note = (
        f" Their answers still count in {len(finished)} finished pool(s); excluding them "
        "re-issues tasks at a cost shown below."
        if finished
        else ""
    )
    flash(request, f"Labeler #{labeler_id} banned.{note}", "success")
    return _back_to_labeler(request, pool_id, labeler_id)


@router.post(
    "/requester/pools/{pool_id}/labelers/{labeler_id}/exclude-answers",
    name="quality:exclude_answers",
)
async def exclude_answers(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, labeler_id: int
):
    """Exclude a banned labeler's answers from a finished pool for the cost shown."""
    form = await request.form()
    try:
        target = parse_int(form.get("target_pool_id"), field="target_pool_id", minimum=1)
        cents = parse_int(form.get("cost_cents"), field="cost_cents", minimum=0)
        done = banned_answers.exclude_answers(
            session,
            requester_id=user.id,
            pool_id=target,
            labeler_id=labeler_id,
            confirmed_cents=cents,
        )
    except CrowdlabError as exc:
        return _labeler_page(
            request,
            session,
            user,
            pool_id,
            labeler_id,
            errors={"exclude": exc.message},
            status=exc.status_code,
        )
    flash(
        request,
        f"Excluded {done.answers} answer(s) from {done.pool.name}; {done.slots} task slot(s) "
        f"re-issued for ${done.cost_cents / 100:.2f}.",
        "success",
    )
    return _back_to_labeler(request, pool_id, labeler_id)


@router.post("/requester/pools/{pool_id}/labelers/{labeler_id}/unban", name="quality:unban")
async def unban(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, labeler_id: int
):
    """Lift one ban (``ban_id``) or every active ban of the labeler."""
    overlap.owned_pool(session, requester_id=user.id, pool_id=pool_id)
    form = await request.form()
    ban_id = str(form.get("ban_id") or "")
    if ban_id.isdigit():
        bans.lift_ban(session, requester=user, ban_id=int(ban_id))
        flash(request, "Ban lifted.", "success")
    else:
        count = bans.unban_labeler(session, requester=user, labeler_id=labeler_id)
        flash(request, f"Lifted {count} ban(s).", "success")
    return _back_to_labeler(request, pool_id, labeler_id)


@router.post("/requester/pools/{pool_id}/labelers/{labeler_id}/bonus", name="quality:bonus")
async def bonus(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, labeler_id: int
):
    """Grant a bonus for accepted work in this pool."""
    form = await request.form()
    try:
        cents = parse_money_cents(form.get("amount"), field="amount", minimum_cents=1)
        bonuses.grant_bonus(
            session,
            requester=user,
            labeler_id=labeler_id,
            amount_cents=cents,
            message=str(form.get("message") or ""),
            pool_id=pool_id,
        )
    except (ValidationFailed, CrowdlabError) as exc:
        errors = getattr(exc, "errors", {}) or {}
        return _labeler_page(
            request,
            session,
            user,
            pool_id,
            labeler_id,
            errors={"bonus": exc.message, **errors},
            values=dict(form),
            status=exc.status_code,
        )
    flash(request, f"Bonus of ${cents / 100:.2f} sent.", "success")
    return _back_to_labeler(request, pool_id, labeler_id)


@router.post("/requester/pools/{pool_id}/labelers/{labeler_id}/skill", name="quality:set_skill")
async def set_skill(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, labeler_id: int
):
    """Set one of the requester's skills for the labeler by hand."""
    overlap.owned_pool(session, requester_id=user.id, pool_id=pool_id)
    form = await request.form()
    try:
        skills.set_user_skill(
            session,
            requester=user,
            skill_id=parse_int(form.get("skill_id"), field="skill_id", minimum=1),
            labeler_id=labeler_id,
            value=parse_int(form.get("value"), field="value", minimum=0, maximum=100),
        )
    except ValidationFailed as exc:
        return _labeler_page(
            request,
            session,
            user,
            pool_id,
            labeler_id,
            errors={"skill": exc.message, **exc.errors},
            values=dict(form),
            status=422,
        )
    flash(request, "Skill saved.", "success")
    return _back_to_labeler(request, pool_id, labeler_id)


def _bans_page(request, session, user, pool_id, *, error=None, values=None, status=200):
    pool = overlap.owned_pool(session, requester_id=user.id, pool_id=pool_id)
    found = bans.list_bans(session, requester=user, limit=500)
    ctx = {
        "pool": pool,
        "bans": found,
        "is_active": bans.is_active,
        "scopes": SCOPES,
        "units": DURATION_UNITS,
        "error": error,
        "values": values or {},
    }
    return render(request, "requester/quality/bans.html", ctx, status_code=status)


@router.get("/requester/pools/{pool_id}/bans", name="quality:bans")
def bans_page(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """Every ban of this requester, and the bulk-ban form."""
    return _bans_page(request, session, user, pool_id)


@router.post("/requester/pools/{pool_id}/bans/upload", name="quality:bans_upload")
async def bans_upload(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """Ban every labeler id in a file (one per line, or TSV with worker_id), all or none."""
    form = await request.form()
    upload = form.get("file")
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise ValidationFailed("Choose a file of labeler ids.", errors={"file": "Required."})
        made = ban_files.ban_labelers_from_file(
            session,
            requester=user,
            data=await upload.read(),
            pool_id=pool_id,
            **_ban_fields(form),
        )
    except (ValidationFailed, UploadRejected) as exc:
        return _bans_page(request, session, user, pool_id, error=exc, values=values, status=422)
    flash(request, f"Banned {len(made)} labeler(s).", "success")
    return RedirectResponse(request.url_for("quality:bans", pool_id=pool_id), status_code=303)


@router.get("/requester/skills", name="quality:skills")
def skills_page(request: Request, session: SessionDep, user: CurrentRequester):
    """The requester's skills."""
    ctx = {"skills": skills.list_skills(session, requester=user), "errors": {}, "values": {}}
    return render(request, "requester/quality/skills.html", ctx)


@router.post("/requester/skills", name="quality:skills_create")
async def skills_create(request: Request, session: SessionDep, user: CurrentRequester):
    form = await request.form()
    try:
        skills.create_skill(
            session,
            requester=user,
            name=str(form.get("name") or ""),
            description=str(form.get("description") or ""),
        )
    except CrowdlabError as exc:
        ctx = {
            "skills": skills.list_skills(session, requester=user),
            "errors": {"name": exc.message},
            "values": dict(form),
        }
        return render(request, "requester/quality/skills.html", ctx, status_code=exc.status_code)
    flash(request, "Skill created.", "success")
    return RedirectResponse(request.url_for("quality:skills"), status_code=303)
