"""Domain errors. Services raise these; each edge (HTML, JSON) renders them its own way."""

from __future__ import annotations


class CrowdlabError(Exception):
    """Base error with a message a user can read."""

    status_code = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, payload: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.payload = payload or {}


class NotFound(CrowdlabError):
    """The object does not exist or belongs to someone else (ids never leak)."""

    status_code = 404
    code = "DOES_NOT_EXIST"


class Forbidden(CrowdlabError):
    """The actor's role may not do this."""

    status_code = 403
    code = "ACCESS_DENIED"


class Unauthorized(CrowdlabError):
    """No valid credentials."""

    status_code = 401
    code = "AUTHENTICATION_ERROR"


class Conflict(CrowdlabError):
    """The object's state does not allow this now."""

    status_code = 409
    code = "CONFLICT_STATE"


class ValidationFailed(CrowdlabError):
    """Input is invalid; ``errors`` maps field names to messages."""

    status_code = 422
    code = "VALIDATION_ERROR"

    def __init__(self, message: str, *, errors: dict[str, str] | None = None) -> None:
        super().__init__(message, payload={"errors": errors or {}})
        self.errors = errors or {}


class InsufficientFunds(CrowdlabError):
    """The balance does not cover the amount (409: the account's state refuses it now)."""

    status_code = 409
    code = "INSUFFICIENT_FUNDS"


class LabelerBanned(CrowdlabError):
    """The labeler is banned for this scope; the message is the public reason."""

    status_code = 403
    code = "USER_RESTRICTED"


class UploadRejected(CrowdlabError):
    """An upload was refused as a whole; names the bad row / column / file."""

    status_code = 422
    code = "UPLOAD_REJECTED"

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        file: str | None = None,
        problems: list[str] | None = None,
    ) -> None:
        payload = {"row": row, "column": column, "file": file, "problems": problems or []}
        super().__init__(message, payload={k: v for k, v in payload.items() if v})
        self.row = row
        self.column = column
        self.file = file
        self.problems = problems or []


class ServiceUnavailable(CrowdlabError):
    """A service Crowdlab depends on did not answer; nothing was changed, retry later
    (503 with ``Retry-After``)."""

    status_code = 503
    code = "SERVICE_UNAVAILABLE"
    retry_after = 2


class DatabaseBusy(ServiceUnavailable):
    """The database did not answer in time (locked, timed out, unreachable); retry later."""

    code = "DATABASE_BUSY"

    def __init__(self, message: str = "The database is busy, try again in a moment.") -> None:
        super().__init__(message)


class MediaStoreUnavailable(ServiceUnavailable):
    """The media store (a folder or an fsspec URL such as ``s3://``) could not be reached."""

    code = "MEDIA_STORE_UNAVAILABLE"
    retry_after = 5

    def __init__(
        self, message: str = "The image store is unreachable; try again in a moment."
    ) -> None:
        super().__init__(message)
