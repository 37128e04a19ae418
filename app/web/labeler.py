"""Labeler pages: available work, the task-suite page (HTMX), earnings, ban notices."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from app.deps import CurrentLabeler, SessionDep, verify_csrf
from app.errors import (
    Conflict,
    Forbidden,
    InsufficientFunds,
    LabelerBanned,
    NotFound,
    ValidationFailed,
)
from app.services import answer_sets
from app.services.labeling import earnings as earnings_svc
from app.services.labeling.assignments import (
    NoSuiteAvailable,
    assign_next_suite,
    check_training_answer,
    get_assignment,
    skip_assignment,
    submit_assignment,
)
from app.services.labeling.available import (
    list_available_pools,
    list_ban_notices,
)
from app.services.labeling.captchas import (
    CaptchaRequired,
    answer_captcha,
    captcha_image,
    open_captcha,
)
from app.services.labeling.drafts import save_draft
from app.services.money import ledger
from app.web.lists import ListView, list_params
from app.web.templating import flash, is_htmx, money, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

ANSWER_FIELD = re.compile(r"^a(\d{1,4})$")
FIRST_FIELD = re.compile(r"^f(\d{1,4})$")
NONE_FIELD = re.compile(r"^n(\d{1,4})$")  # several answers: "none of these" ticked


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form as plain strings (read once, before the sync route runs)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormFields = Annotated[dict[str, str], Depends(form_fields)]


async def form_items(request: Request) -> list[tuple[str, str]]:
    """Every posted (name, value) pair: checkboxes send a name once per ticked box."""
    form = await request.form()
    return [(key, value) for key, value in form.multi_items() if isinstance(value, str)]


FormItems = Annotated[list[tuple[str, str]], Depends(form_items)]


def _answers(fields: dict[str, str], items: list[tuple[str, str]]) -> dict:
    """The answers by position: an option's value, or with several answers (the form says
    ``answer_type=multiple``) the list of ticked values ([] for "none of these"); a task
    with nothing ticked has no answer."""
    if fields.get("answer_type") != "multiple":
        return _positions(fields, ANSWER_FIELD)
    found: dict[int, list[str]] = {}
    for key, value in items:
        if match := NONE_FIELD.match(key):
            found.setdefault(int(match.group(1)), [])
        elif (match := ANSWER_FIELD.match(key)) and value:
            found.setdefault(int(match.group(1)), []).append(value)
    return found


def _positions(fields: dict[str, str], pattern: re.Pattern) -> dict[int, str]:
    found = {}
    for key, value in fields.items():
        if match := pattern.match(key):
            found[int(match.group(1))] = value
    return found


def _chosen(values: dict) -> dict:
    """Answers by position as the page shows them: a set's JSON text becomes its list."""
    shown = {}
    for pos, value in values.items():
        chosen = answer_sets.decode(value) if isinstance(value, str) else None
        shown[pos] = value if chosen is None else chosen
    return shown


def _suite_page(request: Request, view, *, status_code=200, **extra):
    context = {
        "suite": view,
        "values": dict(view.draft),  # the answers saved so far (a refresh keeps them)
        "firsts": {},
        "errors": {},
        "message": "",
        **extra,
    }
    context["values"] = _chosen(context["values"])
    response = render(
        request,
        "labeler/suite.html",
        context,
        partial="labeler/_suite.html",
        status_code=status_code,
    )
    # never from a cache: Back after a submit asks again and sees the suite as submitted
    response.headers["Cache-Control"] = "no-store"
    return response


def _banned(request: Request, exc: LabelerBanned):
    return render(
        request,
        "labeler/banned.html",
        {"message": exc.message, "notice": exc.payload},
        partial="labeler/_banned.html",
        status_code=403,
    )


@router.get("/labeler", name="labeler:home")
def labeler_home(request: Request, session: SessionDep, user: CurrentLabeler):
    """Available work for this labeler, and any bans in force."""
    return render(
        request,
        "labeler/home.html",
        {
            "pools": list_available_pools(session, labeler=user),
            "bans": list_ban_notices(session, labeler=user),
        },
    )


@router.post("/labeler/pools/{pool_id}/take", name="labeler:take")
def take_suite(request: Request, session: SessionDep, user: CurrentLabeler, pool_id: int):
    """Start (or resume) a suite in a pool."""
    try:
        view = assign_next_suite(session, labeler=user, pool_id=pool_id)
    except LabelerBanned as exc:
        return _banned(request, exc)
    except CaptchaRequired:
        return RedirectResponse(request.url_for("labeler:captcha", pool_id=pool_id), 303)
    except (NoSuiteAvailable, Forbidden, NotFound) as exc:
        flash(request, exc.message, "error")
        return RedirectResponse(request.url_for("labeler:home"), status_code=303)
    url = request.url_for("labeler:suite", assignment_id=view.assignment_id)
    return RedirectResponse(url, status_code=303)


@router.get("/labeler/assignments/{assignment_id}", name="labeler:suite")
def suite_page(request: Request, session: SessionDep, user: CurrentLabeler, assignment_id: int):
    """All tasks of one suite on one page."""
    view = get_assignment(session, labeler=user, assignment_id=assignment_id)
    return _suite_page(request, view)


def _next_suite(request: Request, session, user, *, pool_id: int, notice: str):
    """After a submit: the next suite of the same pool, or a 'pool done' panel."""
    try:
        view = assign_next_suite(session, labeler=user, pool_id=pool_id)
    except LabelerBanned as exc:
        return _banned(request, exc)
    except CaptchaRequired:
        url = str(request.url_for("labeler:captcha", pool_id=pool_id))
        if not is_htmx(request):
            flash(request, notice)
            return RedirectResponse(url, status_code=303)
        return Response(status_code=200, headers={"HX-Redirect": url})
    except (NoSuiteAvailable, Forbidden, NotFound) as exc:
        return render(
            request,
            "labeler/done.html",
            {"notice": notice, "reason": exc.message},
            partial="labeler/_done.html",
        )
    url = str(request.url_for("labeler:suite", assignment_id=view.assignment_id))
    if not is_htmx(request):
        flash(request, notice)
        return RedirectResponse(url, status_code=303)
    response = _suite_page(request, view, notice=notice)
    response.headers["HX-Push-Url"] = url
    return response


@router.post("/labeler/assignments/{assignment_id}/submit", name="labeler:submit")
def submit_suite(
    request: Request,
    session: SessionDep,
    user: CurrentLabeler,
    assignment_id: int,
    fields: FormFields,
    items: FormItems,
):
    """Submit the answers; the next suite comes back in place (HTMX)."""
    answers = _answers(fields, items)
    firsts = _positions(fields, FIRST_FIELD)
    try:
        result = submit_assignment(
            session,
            labeler=user,
            assignment_id=assignment_id,
            answers=answers,
            by_position=True,
            first_values=firsts,
        )
    except ValidationFailed as exc:
        session.rollback()
        view = get_assignment(session, labeler=user, assignment_id=assignment_id)
        return _suite_page(
            request,
            view,
            status_code=422,
            values=answers,
            firsts=firsts,
            errors=exc.errors,
            message=exc.message,
        )
    except Conflict as exc:
        session.rollback()
        view = get_assignment(session, labeler=user, assignment_id=assignment_id)
        return _suite_page(request, view, status_code=409, message=exc.message)
    if result.status == "accepted":
        notice = f"Suite submitted and accepted: you earned {money(result.reward_cents)}."
    else:
        notice = "Suite submitted. It is paid when the requester accepts it."
    return _next_suite(request, session, user, pool_id=result.pool_id, notice=notice)


@router.post("/labeler/assignments/{assignment_id}/draft", name="labeler:draft")
def save_suite_draft(
    session: SessionDep,
    user: CurrentLabeler,
    assignment_id: int,
    fields: FormFields,
    items: FormItems,
):
    """Keep the answers chosen so far (sent by the page as the labeler picks them): 204."""
    try:
        save_draft(
            session, labeler=user, assignment_id=assignment_id,
            answers=_answers(fields, items),
        )  # fmt: skip
    except Conflict as exc:
        return Response(exc.message, status_code=409, media_type="text/plain")
    return Response(status_code=204)


@router.post("/labeler/assignments/{assignment_id}/skip", name="labeler:skip")
def skip_suite(request: Request, session: SessionDep, user: CurrentLabeler, assignment_id: int):
    """Give the suite back; its tasks go to other labelers."""
    skip_assignment(session, labeler=user, assignment_id=assignment_id)
    flash(request, "Suite skipped. Its tasks went back to the pool.")
    url = request.url_for("labeler:home")
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": str(url)})
    return RedirectResponse(url, status_code=303)


def _captcha_page(request: Request, challenge, *, status_code=200, **extra):
    context = {"captcha": challenge, "error": "", **extra}
    response = render(request, "labeler/captcha.html", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/labeler/pools/{pool_id}/captcha", name="labeler:captcha")
def captcha_page(request: Request, session: SessionDep, user: CurrentLabeler, pool_id: int):
    """The captcha that stands between the labeler and the pool's next suite."""
    try:
        challenge = open_captcha(session, labeler=user, pool_id=pool_id)
    except (Conflict, NotFound) as exc:
        flash(request, exc.message, "error")
        return RedirectResponse(request.url_for("labeler:home"), status_code=303)
    return _captcha_page(request, challenge)


@router.get("/labeler/captchas/{captcha_id}/image", name="labeler:captcha_image")
def captcha_picture(session: SessionDep, user: CurrentLabeler, captcha_id: int):
    """The captcha's picture (only its labeler's, only until it is answered)."""
    png = captcha_image(session, labeler=user, captcha_id=captcha_id)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post("/labeler/pools/{pool_id}/captcha", name="labeler:captcha_answer")
def captcha_answer(
    request: Request, session: SessionDep, user: CurrentLabeler, pool_id: int, fields: FormFields
):
    """Check the answer (right or wrong, it counts), then on to the next suite."""
    try:
        captcha_id = int(fields.get("captcha_id", ""))
    except ValueError:
        return RedirectResponse(request.url_for("labeler:captcha", pool_id=pool_id), 303)
    try:
        result = answer_captcha(
            session, labeler=user, captcha_id=captcha_id, answer=fields.get("answer", "")
        )
    except ValidationFailed as exc:
        session.rollback()
        challenge = open_captcha(session, labeler=user, pool_id=pool_id)
        return _captcha_page(request, challenge, status_code=422, error=exc.message)
    except Conflict as exc:  # answered already (a double submit): go on
        session.rollback()
        return _next_suite(request, session, user, pool_id=pool_id, notice=exc.message)
    notice = "Captcha solved." if result.solved else "That was not the text in the picture."
    return _next_suite(request, session, user, pool_id=result.pool_id, notice=notice)


@router.post("/labeler/assignments/{assignment_id}/check/{position}", name="labeler:check")
def check_answer(
    request: Request,
    session: SessionDep,
    user: CurrentLabeler,
    assignment_id: int,
    position: int,
    fields: FormFields,
):
    """Right or wrong (plus the hint) for a practice task; nothing for other tasks."""
    check = check_training_answer(
        session,
        labeler=user,
        assignment_id=assignment_id,
        position=position,
        value=fields.get("value", ""),
    )
    verdict = {True: "right", False: "wrong", None: "none"}[check.correct]
    response = render(request, "labeler/_check.html", {"check": check})
    response.headers["X-Check"] = verdict
    return response


def _earnings_page(request, session, user, *, errors=None, amount="", status_code=200):
    show = "history" if request.query_params.get("show") == "history" else "suites"
    if show == "history":
        params = list_params(request, ledger.ENTRY_LIST)
        page = ledger.page_entries(session, user=user, params=params)
    else:
        params = list_params(request, earnings_svc.EARNING_LIST)
        page = earnings_svc.page_earned_suites(session, labeler=user, params=params)
    filters = {"show": "history" if show == "history" else None}
    return render(
        request,
        "labeler/earnings.html",
        {
            "balance_cents": ledger.get_balance(session, user=user),
            "show": show,
            "rows": ListView(
                request,
                page,
                target="earnings",
                filters=filters,
                path=request.url_for("labeler:earnings").path,
            ),
            "errors": errors or {},
            "amount": amount,
        },
        status_code=status_code,
    )


@router.get("/labeler/earnings", name="labeler:earnings")
def earnings(request: Request, session: SessionDep, user: CurrentLabeler):
    """Balance, paid suites, and the withdraw form."""
    return _earnings_page(request, session, user)


def _cents(text: str) -> int | None:
    cleaned = text.strip().replace("$", "").replace(",", "")
    if not re.fullmatch(r"\d{1,9}(\.\d{1,2})?", cleaned):
        return None
    dollars, _, cents = cleaned.partition(".")
    return int(dollars) * 100 + int((cents + "00")[:2])


@router.post("/labeler/earnings/withdraw", name="labeler:withdraw")
def withdraw(request: Request, session: SessionDep, user: CurrentLabeler, fields: FormFields):
    """Move earnings out (a simulated payout)."""
    amount = fields.get("amount", "")
    cents = _cents(amount)
    if cents is None:
        errors = {"amount": "Enter an amount in dollars, like 12.50."}
        return _earnings_page(request, session, user, errors=errors, amount=amount, status_code=422)
    try:
        ledger.withdraw(session, user=user, amount_cents=cents)
    except (ValidationFailed, InsufficientFunds) as exc:
        session.rollback()
        return _earnings_page(
            request, session, user, errors={"amount": exc.message}, amount=amount, status_code=422
        )
    flash(request, f"{money(cents)} is on its way to your payout account.")
    return RedirectResponse(request.url_for("labeler:earnings"), status_code=303)
