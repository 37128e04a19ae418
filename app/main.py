"""Builds the FastAPI application."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from contextlib import asynccontextmanager
from urllib.parse import quote

import anyio.to_thread
import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

import workers.queue  # noqa: F401  (installs the job queue that services submit to)
from app.db.engine import is_busy_error
from app.deps import LoginRequired
from app.errors import CrowdlabError, DatabaseBusy, ServiceUnavailable, ValidationFailed
from app.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware, UploadGuardMiddleware
from app.rate_limits import AuthThrottle
from app.settings import REPO_ROOT, get_settings

log = logging.getLogger("crowdlab")

API_PREFIXES = ("/api/", "/customvision/")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def _is_toloka_client(request: Request) -> bool:
    """toloka-kit sends ``X-Caller-Context: client`` and its own User-Agent; it reads
    validation errors as ``{field: {code, message}}`` (other callers get ``{"errors"}``)."""
    agent = request.headers.get("user-agent", "")
    return request.headers.get("x-caller-context") == "client" or agent.startswith(
        "python-toloka-client"
    )


def _error_json(status: int, code: str, message: str, payload: dict | None = None) -> JSONResponse:
    body = {"code": code, "message": message}
    if payload:
        body["payload"] = payload
    return JSONResponse(body, status_code=status)


def _error_html(request: Request, status: int, title: str, message: str):
    from app.web.templating import is_htmx, render

    if is_htmx(request):
        # Inline error for partial swaps; htmx swaps 4xx bodies because of base.html config.
        return render(request, "components/_error.html", {"message": message}, status_code=status)
    return render(
        request,
        "errors/error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
    )


_TITLES = {
    400: "Bad request",
    401: "Please log in",
    402: "Not enough funds",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Not possible right now",
    413: "Too large",
    422: "Please check your input",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Busy, try again",
}


def _is_nul_in_text(exc: BaseException) -> bool:
    """PostgreSQL's refusal of a NUL byte in text (psycopg raises it before sending; SQLAlchemy
    may wrap it)."""
    for error in (exc, getattr(exc, "orig", None), exc.__cause__):
        if error is None or not any(cls.__name__ == "DataError" for cls in type(error).__mro__):
            continue
        text = str(error)
        if "NUL" in text or "\\u0000" in text:  # text columns; JSON(B) columns
            return True
    return False


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("HX-Request") == "true":
            return JSONResponse({}, status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(CrowdlabError)
    async def crowdlab_error(request: Request, exc: CrowdlabError):
        if _wants_json(request):
            payload = exc.payload
            if isinstance(exc, ValidationFailed) and _is_toloka_client(request):
                from app.compat.toloka.shapes import toloka_validation_payload

                payload = toloka_validation_payload(exc.errors, exc.message)
            response = _error_json(exc.status_code, exc.code, exc.message, payload)
        else:
            title = _TITLES.get(exc.status_code, "Error")
            response = _error_html(request, exc.status_code, title, exc.message)
        if isinstance(exc, ServiceUnavailable):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError):
        # Busy, timed out or unreachable: a quick 503 the client may retry; not a bug.
        if not is_busy_error(exc):
            raise exc  # a bug: the server-error handler logs it and answers 500
        log.warning("database busy on %s: %s", request.url.path, str(exc).splitlines()[0])
        return await crowdlab_error(request, DatabaseBusy())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        if _wants_json(request):
            if exc.status_code in (404, 405) and request.url.path.startswith("/api/"):
                # no route for this method and path: Toloka's shape says "not supported"
                # (toloka-kit reads ``code``), never a bare "Not Found"
                from app.compat.toloka.shapes import unsupported_feature

                feature = unsupported_feature(request.url.path)
                what = (
                    f"Toloka's {feature}"
                    if feature
                    else f"{request.method} {request.url.path} (no such Toloka API call here)"
                )
                return _error_json(501, "NOT_SUPPORTED", f"Crowdlab does not support {what}.")
            code = {404: "DOES_NOT_EXIST", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "ERROR")
            return _error_json(exc.status_code, code, message)
        return _error_html(request, exc.status_code, _TITLES.get(exc.status_code, "Error"), message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors, toloka = {}, {}
        for err in exc.errors():
            loc = ".".join(
                str(part) for part in err.get("loc", ()) if part not in ("body", "query")
            )
            errors[loc or "request"] = err.get("msg", "invalid")
            toloka[loc or "request"] = {
                "code": str(err.get("type", "invalid")).upper(),
                "message": err.get("msg", "invalid"),
            }
        if _wants_json(request):
            if _is_toloka_client(request):  # Toloka's shape: {field: {code, message}}
                return _error_json(400, "VALIDATION_ERROR", "Validation failed", toloka)
            return _error_json(422, "VALIDATION_ERROR", "Validation failed", {"errors": errors})
        detail = "; ".join(f"{k}: {v}" for k, v in errors.items())
        return _error_html(request, 422, _TITLES[422], detail)

    async def data_error(request: Request, exc: Exception):
        if _is_nul_in_text(exc):  # a field without its own check: still the user's input
            refused = ValidationFailed("Text may not contain NUL (0x00) characters.")
            return await crowdlab_error(request, refused)
        return await unexpected_error(request, exc)

    # (their own handlers, not the catch-all's: Starlette re-raises what that one handles)
    app.add_exception_handler(psycopg.DataError, data_error)
    app.add_exception_handler(sqlalchemy.exc.DataError, data_error)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        if _wants_json(request):
            return _error_json(500, "INTERNAL_ERROR", "Internal server error")
        return _error_html(request, 500, _TITLES[500], "The error was logged. Please try again.")


# Routers are matched one after another, so the labeling hot path goes first (its
# prefix, /api/v1/labeler, is its own: moving it changes no other route's match).
HOT_ROUTERS = ("app.api.labeler",)


def _include_routers(app: FastAPI, package_name: str) -> None:
    package = importlib.import_module(package_name)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        name = f"{package_name}.{info.name}"
        if info.ispkg or info.name.startswith("_") or name in HOT_ROUTERS:
            continue
        module = importlib.import_module(name)
        router = getattr(module, "router", None)
        if router is not None:
            app.include_router(router)


def create_app(*, start_jobs: bool | None = None) -> FastAPI:
    """The application; ``start_jobs`` runs a job consumer with the server (in a child
    process unless ``CROWDLAB_JOBS_CHILD_PROCESS=false``)."""
    settings = get_settings()
    run_consumer = settings.jobs_in_process if start_jobs is None else start_jobs

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        consume = run_consumer and not settings.jobs_immediate
        if consume and settings.jobs_child_process:
            workers.queue.start_worker_process(settings.worker_threads)
        elif consume:
            workers.queue.start_in_process_consumer(settings.worker_threads)
        yield
        if consume:
            workers.queue.stop_worker_process()
            workers.queue.stop_in_process_consumer()

    app = FastAPI(
        title="Crowdlab",
        version="0.1.0",
        description="Self-hosted crowdsourcing labeling marketplace for images.",
        lifespan=lifespan,
    )
    app.state.auth_throttle = AuthThrottle.from_settings(settings)
    # Added inner to outer: headers on every response, the session decoded before the
    # body limit and the upload guard, both of which answer before a body is read.
    app.add_middleware(UploadGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.resolved_secret_key,
        session_cookie="crowdlab_session",
        max_age=settings.session_max_age,
        same_site="lax",
        https_only=settings.cookie_secure or settings.base_url.startswith("https://"),
    )
    if settings.security_headers:
        app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    static_dir = REPO_ROOT / "static"
    static_dir.mkdir(exist_ok=True)
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")
    _install_error_handlers(app)
    for name in HOT_ROUTERS:
        app.include_router(importlib.import_module(name).router)
    _include_routers(app, "app.web")
    _include_routers(app, "app.api")
    # the compatibility layers, each mounted as a unit (see app/compat)
    _include_routers(app, "app.compat.toloka.routes")
    app.include_router(importlib.import_module("app.compat.customvision.routes.mount").router)
    return app
