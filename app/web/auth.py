"""Sign-up, log-in, log-out and the account settings page (API tokens)."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from app.db.models import Role
from app.deps import CurrentUser, OptionalUser, SessionDep, verify_csrf
from app.errors import Unauthorized, ValidationFailed
from app.services.accounts import users
from app.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


def _home_for(role: str) -> str:
    return "/labeler" if role == Role.LABELER else "/requester"


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@router.get("/", name="home")
def home(request: Request, user: OptionalUser):
    """Landing page; logged-in users go to their console."""
    if user is not None:
        return RedirectResponse(_home_for(user.role), status_code=303)
    return render(request, "home.html")


@router.get("/signup/{role}", name="auth:signup")
def signup_page(request: Request, role: str):
    """Separate sign-up pages for requesters and labelers."""
    if role not in (Role.REQUESTER, Role.LABELER):
        return RedirectResponse("/signup/requester", status_code=303)
    return render(request, "auth/signup.html", {"role": role, "errors": {}, "values": {}})


@router.post("/signup/{role}", name="auth:signup_submit")
def signup_submit(
    request: Request,
    session: SessionDep,
    role: str,
    email: str = Form(""),
    password: str = Form(""),
    name: str = Form(""),
    languages: str = Form(""),
):
    """Create the account and log in."""
    if role not in (Role.REQUESTER, Role.LABELER):
        return RedirectResponse("/signup/requester", status_code=303)
    try:
        user = users.create_user(
            session,
            email=email,
            password=password,
            role=role,
            name=name,
            languages=languages.replace(";", ",").split(",") if languages else ["EN"],
        )
    except ValidationFailed as exc:
        values = {"email": email, "name": name, "languages": languages}
        return render(
            request,
            "auth/signup.html",
            {"role": role, "errors": exc.errors, "values": values, "message": exc.message},
            status_code=422,
        )
    request.session.clear()
    request.session["uid"] = user.id
    flash(request, f"Welcome to Crowdlab, {user.name}!", "success")
    return RedirectResponse(_home_for(user.role), status_code=303)


@router.get("/login", name="auth:login")
def login_page(request: Request, next: str | None = None):
    """The one log-in page for every role."""
    return render(request, "auth/login.html", {"next": _safe_next(next) or "", "values": {}})


@router.post("/login", name="auth:login_submit")
def login_submit(
    request: Request,
    session: SessionDep,
    email: str = Form(""),
    password: str = Form(""),
    next: str = Form(""),
):
    """Check the credentials and start a session."""
    try:
        user = users.authenticate(session, email=email, password=password)
    except Unauthorized as exc:
        return render(
            request,
            "auth/login.html",
            {"message": exc.message, "next": _safe_next(next) or "", "values": {"email": email}},
            status_code=401,
        )
    request.session.clear()
    request.session["uid"] = user.id
    return RedirectResponse(_safe_next(next) or _home_for(user.role), status_code=303)


@router.post("/logout", name="auth:logout")
def logout(request: Request):
    """End the session."""
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/account", name="account:settings")
def account_page(request: Request, session: SessionDep, user: CurrentUser):
    """Profile and API tokens."""
    tokens = users.list_api_tokens(session, user=user)
    new_token = request.session.pop("new_token", None)
    return render(request, "auth/account.html", {"tokens": tokens, "new_token": new_token})


@router.post("/account/tokens", name="account:create_token")
def create_token(request: Request, session: SessionDep, user: CurrentUser, name: str = Form("")):
    """Create an API token and show it once."""
    try:
        _token, plain = users.create_api_token(session, user=user, name=name)
    except ValidationFailed as exc:
        flash(request, exc.message, "error")
        return RedirectResponse("/account", status_code=303)
    request.session["new_token"] = plain
    return RedirectResponse("/account", status_code=303)


@router.post("/account/tokens/{token_id}/revoke", name="account:revoke_token")
def revoke_token(request: Request, session: SessionDep, user: CurrentUser, token_id: int):
    """Revoke a token; clients using it get 401 from now on."""
    users.revoke_api_token(session, user=user, token_id=token_id)
    flash(request, "Token revoked.", "success")
    return RedirectResponse("/account", status_code=303)


@router.post("/account/profile", name="account:profile")
def update_profile(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    name: str = Form(""),
    languages: str = Form(""),
    adult_allowed: bool = Form(False),
):
    """Change display name, languages and (labelers) the adult-content opt-in."""
    users.update_labeler_profile(
        session,
        user=user,
        languages=languages.replace(";", ",").split(","),
        adult_allowed=adult_allowed,
        name=name,
    )
    flash(request, "Profile saved.", "success")
    return RedirectResponse("/account", status_code=303)
