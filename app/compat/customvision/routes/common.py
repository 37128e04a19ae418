"""What every Custom Vision route shares: errors in Azure's shape, keys, version check.

Errors are ``{"code", "message"}`` (the SDK's ``CustomVisionError``) with 400/401/403/404
status codes, never a 5xx for an expected failure (the SDK retries those on GET).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from app.compat.customvision.domain import CustomVisionError
from app.compat.customvision.publishing import model_for_key
from app.compat.customvision.routes.schemas import encode
from app.db.models import Role, User
from app.deps import SessionDep
from app.errors import (
    Conflict,
    CrowdlabError,
    Forbidden,
    NotFound,
    Unauthorized,
    UploadRejected,
    ValidationFailed,
)
from app.security import token_from_headers
from app.services.accounts.users import get_user, user_for_token

VERSION = re.compile(r"^v3\.\d+(-preview)?$")


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """A Custom Vision error body."""
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _from_crowdlab(exc: CrowdlabError) -> JSONResponse:
    if isinstance(exc, CustomVisionError):
        return error_response(exc.status_code, exc.code, exc.message)
    if isinstance(exc, ValidationFailed):
        details = "; ".join(f"{k}: {v}" for k, v in exc.errors.items() if v)
        message = f"{exc.message} ({details})" if details else exc.message
        return error_response(400, "BadRequest", message)
    mapping = [
        (UploadRejected, 400, "BadRequestImageFormat"),
        (NotFound, 404, "NotFound"),
        (Unauthorized, 401, "Unauthorized"),
        (Forbidden, 403, "Forbidden"),
        (Conflict, 409, "Conflict"),
    ]
    for cls, status, code in mapping:
        if isinstance(exc, cls):
            return error_response(status, code, exc.message)
    return error_response(400, "BadRequest", exc.message)


class CustomVisionRoute(APIRoute):
    """An API route whose errors come back as Custom Vision errors."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except CrowdlabError as exc:
                return _from_crowdlab(exc)
            except RequestValidationError as exc:
                problems = []
                for err in exc.errors():
                    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
                    problems.append(f"{where}: {err.get('msg', 'invalid')}")
                return error_response(400, "BadRequest", "; ".join(problems) or "Bad request.")

        return route_handler


def check_version(version: str) -> None:
    """Accept any v3.x API version in the path (``v3.3``, ``v3.4-preview``, ...)."""
    if not VERSION.match(version):
        raise CustomVisionError(
            "NotFound", f"API version {version!r} is not served; use v3.x.", status_code=404
        )


def ok(data: Any, status_code: int = 200) -> JSONResponse:
    """A JSON answer (dates as ``...Z``)."""
    return JSONResponse(encode(data), status_code=status_code)


def no_content() -> Response:
    """204 with an empty body (what the SDK expects of deletes)."""
    return Response(status_code=204)


def _training_user(request: Request, session: SessionDep) -> User:
    key = token_from_headers(request)
    if not key:
        raise CustomVisionError(
            "Unauthorized",
            "Send your Crowdlab API token in the Training-Key header.",
            status_code=401,
        )
    try:
        user = user_for_token(session, key)
    except Unauthorized:
        raise CustomVisionError(
            "Unauthorized", "The key is not a valid Crowdlab API token.", status_code=401
        ) from None
    if user.role not in (Role.REQUESTER, Role.ADMIN):
        raise CustomVisionError(
            "Forbidden", "Only requester accounts can train models.", status_code=403
        )
    request.state.user = user
    return user


TrainingUser = Annotated[User, Depends(_training_user)]


def training_user_or_none(request: Request, session) -> User | None:
    """The training key's user, or None when no key was sent (a wrong key is still 401)."""
    if not token_from_headers(request):
        return None
    return _training_user(request, session)


@dataclass
class PredictionCaller:
    """Who predicts: a user's API token, or one model's own prediction key."""

    user: User
    only_model_id: int | None = None


def _prediction_caller(request: Request, session: SessionDep) -> PredictionCaller:
    key = token_from_headers(request)
    if not key:
        raise CustomVisionError(
            "Unauthorized",
            "Send your Crowdlab API token (or the model's prediction key) in the "
            "Prediction-Key header.",
            status_code=401,
        )
    try:
        user = user_for_token(session, key)
    except Unauthorized:
        model = model_for_key(session, key)
        owner = get_user(session, model.owner_id) if model is not None else None
        if owner is None:
            raise CustomVisionError(
                "Unauthorized", "The key is not a valid prediction key.", status_code=401
            ) from None
        return PredictionCaller(owner, model.id)
    if user.role not in (Role.REQUESTER, Role.ADMIN):
        raise CustomVisionError(
            "Forbidden", "Only requester accounts can use published models.", status_code=403
        )
    return PredictionCaller(user)


Caller = Annotated[PredictionCaller, Depends(_prediction_caller)]
