"""Pure-ASGI guards that run before a route reads its request body, and security headers.

FastAPI reads (and spools to disk) a form or multipart body before any dependency runs,
so limits and checks that must hold *before* the body is read live here:

* ``BodyLimitMiddleware``: 413 for a body over its route's limit, by ``Content-Length``
  up front and by counting the chunks of a streamed (chunked) body.
* ``UploadGuardMiddleware``: a multipart web request needs the CSRF token in the
  ``X-CSRF-Token`` header or the ``csrf_token`` query parameter and a live log-in; an
  upload to the API needs an API key header. Otherwise 403/401 before any byte is read.
* ``SecurityHeadersMiddleware``: frame-ancestors/X-Frame-Options, nosniff, Referrer-Policy
  on every response (the ``secure`` library); HSTS only on requests that came over https.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread
from secure import (
    ContentSecurityPolicy,
    ReferrerPolicy,
    Secure,
    StrictTransportSecurity,
    XContentTypeOptions,
    XFrameOptions,
)
from secure.middleware import SecureASGIMiddleware
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.security import (
    CSRF_FORM_FIELD,
    CSRF_HEADER,
    CSRF_SESSION_KEY,
    SESSION_ID_KEY,
    csrf_matches,
    token_from_headers,
)
from app.settings import Settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIXES = ("/api/", "/customvision/")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

# Routes that take files (images, TSV, JSON, ZIP, Custom Vision images, prediction): only
# these get ``max_upload_bytes``; everything else ``max_request_bytes`` (API: the API's).
UPLOAD_ROUTES = re.compile(
    r"^(?:/requester/pools/\d+/upload"
    r"|/requester/pools/\d+/(?:quality/import|review/upload|bans/upload)"
    r"|/requester/collections/import"
    r"|/requester/inference"
    r"|/api/v1/pools/\d+/uploads"
    r"|/api/v1/collections"
    r"|/api/v1/models/\d+/predict"
    r"|/customvision/[^/]+/training/projects/[^/]+/(?:images|images/files|quicktest/image)"
    r"|/customvision/[^/]+/prediction/[^/]+/classify/iterations/[^/]+/image(?:/nostore)?"
    r")/?$"
)


def body_limit(settings: Settings, path: str) -> int:
    """The largest request body the route at ``path`` accepts, in bytes."""
    if UPLOAD_ROUTES.match(path):
        return settings.max_upload_bytes
    if path.startswith(API_PREFIXES):
        return settings.max_api_request_bytes
    return settings.max_request_bytes


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    """An error response in the caller's shape (JSON for the API, a page for browsers)."""
    if scope["path"].startswith(API_PREFIXES):
        codes = {401: "AUTHENTICATION_ERROR", 403: "ACCESS_DENIED", 413: "REQUEST_TOO_LARGE"}
        body = {"code": codes.get(status, "ERROR"), "message": message}
        response: Response = JSONResponse(body, status_code=status, headers=headers)
    else:
        from app.web.templating import is_htmx, render

        request = Request(scope, receive)
        if status == 401 and is_htmx(request):
            response = JSONResponse({}, status_code=401, headers={"HX-Redirect": "/login"})
        else:
            titles = {401: "Please log in", 403: "Not allowed", 413: "Too large"}
            context = {"status": status, "title": titles.get(status, "Error"), "message": message}
            response = render(
                request, "errors/error.html", context, status_code=status, headers=headers
            )
    await response(scope, receive, send)


def _too_large_message(limit: int) -> str:
    size = f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit // 1024} KB"
    return f"The request is larger than this address accepts ({size})."


class BodyLimitMiddleware:
    """413 for a request body over its route's limit, before (or as soon as) it is read."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(self.settings, scope["path"])
        message = _too_large_message(limit)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(scope, receive, send, 413, message, {"Connection": "close"})
            return
        received = 0
        started = False

        async def counted_receive() -> MutableMapping[str, Any]:
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    # FastAPI and Starlette re-raise HTTPException from a body read, so the
                    # app's own handler renders it; a handler that swallows it gets no more.
                    raise HTTPException(413, message)
            return event

        async def watched_send(event: MutableMapping[str, Any]) -> None:
            nonlocal started
            if event["type"] == "http.response.start":
                started = True
            await send(event)

        try:
            await self.app(scope, counted_receive, watched_send)
        except HTTPException as exc:
            if exc.status_code != 413 or started:
                raise
            await _refuse(scope, receive, send, 413, message, {"Connection": "close"})


def _live_session_user(session_id: str) -> bool:
    from app.db.engine import new_session
    from app.services.accounts.users import user_for_web_session

    with new_session(write=False) as session:
        return user_for_web_session(session, session_id) is not None


class UploadGuardMiddleware:
    """CSRF and log-in (web) or an API key (API) checked before a multipart body is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        content_type = (_header(scope, b"content-type") or "").lower()
        if path.startswith(API_PREFIXES):
            if UPLOAD_ROUTES.match(path) and not _api_key_sent(scope):
                text = "Send an API token: 'Authorization: OAuth <token>'."
                await _refuse(scope, receive, send, 401, text)
                return
        elif content_type.startswith("multipart/") and not path.startswith("/static"):
            session = scope.get("session") or {}
            given = _header(scope, CSRF_HEADER.lower().encode()) or _query_csrf(scope)
            if not csrf_matches(session.get(CSRF_SESSION_KEY), given):
                text = "The form expired or was not sent from this site. Reload the page."
                await _refuse(scope, receive, send, 403, text)
                return
            session_id = session.get(SESSION_ID_KEY)
            if not session_id or not await anyio.to_thread.run_sync(_live_session_user, session_id):
                await _refuse(scope, receive, send, 401, "Please log in to upload files.")
                return
        await self.app(scope, receive, send)


def _api_key_sent(scope: Scope) -> bool:

    return token_from_headers(Request(scope)) is not None


def _query_csrf(scope: Scope) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(CSRF_FORM_FIELD)
    return values[0] if values else None


def _secure(hsts_max_age: int | None) -> Secure:
    return Secure(
        csp=ContentSecurityPolicy().clear().frame_ancestors("'none'"),
        xfo=XFrameOptions().deny(),
        xcto=XContentTypeOptions().nosniff(),
        referrer=ReferrerPolicy().strict_origin_when_cross_origin(),
        hsts=StrictTransportSecurity().max_age(hsts_max_age) if hsts_max_age else None,
    )


class SecurityHeadersMiddleware:
    """The ``secure`` library's headers; HSTS only for https requests (scheme as the
    server saw it, i.e. after uvicorn's ``--proxy-headers`` from a trusted TLS proxy)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.plain = SecureASGIMiddleware(app, secure=_secure(None))
        self.tls = SecureASGIMiddleware(app, secure=_secure(settings.hsts_max_age))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self.tls if scope.get("scheme") in ("https", "wss") else self.plain
        await chosen(scope, receive, send)
