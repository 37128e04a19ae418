"""Sign-up, log-in, log-out and the account settings page (password, API tokens)."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from app.db.models import Role, User
from app.deps import CurrentUser, OptionalUser, SessionDep, verify_csrf
from app.errors import Unauthorized, ValidationFailed
from app.rate_limits import AuthThrottle, TooManyAttempts
from app.security import SESSION_ID_KEY
from app.services.accounts import users
from app.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


def _home_for(role: str) -> str:
    return "/labeler" if role == Role.LABELER else "/requester"


def _throttle(request: Request) -> AuthThrottle:
    return request.app.state.auth_throttle


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _start_session(request: Request, session, user: User) -> None:
    """A fresh cookie (no fixation) naming a new server-side session."""
    request.session.clear()
    request.session[SESSION_ID_KEY] = users.start_web_session(session, user=user)


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
    values = {"email": email, "name": name, "languages": languages}
    try:
        _throttle(request).check_signup(ip=_client_ip(request))
    except TooManyAttempts as exc:
        message = "Too many sign-ups from your network. Please try again later."
        return render(
            request,
            "auth/signup.html",
            {"role": role, "errors": {}, "values": values, "message": message},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    try:
        user = users.create_user(
            session,
            email=email,
            password=password,
            role=role,
            name=name,
            languages=languages.replace(";", ",").split(",") if languages else ["EN"],
        )
    except users.EmailTaken:
        # Worded so that the page does not confirm that this address has an account.
        message = (
            "We could not create an account with these details. "
            "If you already have an account, log in instead."
        )
        return render(
            request,
            "auth/signup.html",
            {"role": role, "errors": {}, "values": values, "message": message},
            status_code=422,
        )
    except ValidationFailed as exc:
        return render(
            request,
            "auth/signup.html",
            {"role": role, "errors": exc.errors, "values": values, "message": exc.message},
            status_code=422,
        )
    _start_session(request, session, user)
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
    """Check the credentials and start a session (throttled per IP and per e-mail)."""
    throttle, ip = _throttle(request), _client_ip(request)
    context = {"next": _safe_next(next) or "", "values": {"email": email}}
    try:
        throttle.check_login(ip=ip, email=email)
        user = users.authenticate(session, email=email, password=password)
    except TooManyAttempts as exc:
        minutes = max(1, round(exc.retry_after / 60))
        message = f"Too many failed log-ins. Please wait about {minutes} minute(s)."
        return render(
            request,
            "auth/login.html",
            {**context, "message": message},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except Unauthorized as exc:
        throttle.login_failed(ip=ip, email=email)
        return render(
            request, "auth/login.html", {**context, "message": exc.message}, status_code=401
        )
    _start_session(request, session, user)
    return RedirectResponse(_safe_next(next) or _home_for(user.role), status_code=303)


@router.post("/logout", name="auth:logout")
def logout(request: Request, session: SessionDep):
    """End the session on the server too: a copy of the cookie stops working."""
    session_id = request.session.get(SESSION_ID_KEY)
    if isinstance(session_id, str):
        users.end_web_session(session, plain=session_id)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/account", name="account:settings")
def account_page(request: Request, session: SessionDep, user: CurrentUser):
    """Profile and API tokens."""
    return _account(request, session, user)


def _account(request: Request, session, user: User, errors: dict | None = None, status=200):
    tokens = users.list_api_tokens(session, user=user)
    new_token = request.session.pop("new_token", None)
    context = {"tokens": tokens, "new_token": new_token, "errors": errors or {}}
    return render(request, "auth/account.html", context, status_code=status)


@router.post("/account/password", name="account:password")
def change_password(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    current_password: str = Form(""),
    new_password: str = Form(""),
    confirm_password: str = Form(""),
):
    """Set a new password; every other browser logged in as this user is logged out."""
    try:
        users.change_password(
            session,
            user=user,
            current=current_password,
            new=new_password,
            confirm=confirm_password,
            keep_session=request.session.get(SESSION_ID_KEY),
        )
    except ValidationFailed as exc:
        return _account(request, session, user, exc.errors, status=422)
    flash(request, "Password changed. Your other sessions were logged out.", "success")
    return RedirectResponse("/account", status_code=303)


@router.post("/account/sessions/end-others", name="account:end_other_sessions")
def end_other_sessions(request: Request, session: SessionDep, user: CurrentUser):
    """Log out every other browser (a lost laptop, a shared computer)."""
    ended = users.end_other_web_sessions(
        session, user=user, keep=request.session.get(SESSION_ID_KEY)
    )
    flash(request, f"Logged out {ended} other session(s).", "success")
    return RedirectResponse("/account", status_code=303)


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
