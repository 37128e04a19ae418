"""Image bytes from a raw request body: multipart ``imageData`` parts or a bare image.

Starlette's form parser must not be used here: it decodes a part without a file name as
text (corrupting binary data) and refuses parts above 1 MB; the SDK sends ``bytes`` image
data exactly that way. The body is parsed with ``python_multipart`` instead.
"""

from __future__ import annotations

from io import BytesIO

from fastapi import Request
from python_multipart import parse_form
from python_multipart.exceptions import FormParserError

from app.compat.customvision.domain import CustomVisionError
from app.settings import get_settings


async def raw_body(request: Request) -> bytes:
    """The request body, refused above the upload limit (dependency)."""
    limit = get_settings().max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise CustomVisionError(
            "BadRequestImageSizeBytes", f"The request is larger than {limit // 2**20} MB."
        )
    body = await request.body()
    if len(body) > limit:
        raise CustomVisionError(
            "BadRequestImageSizeBytes", f"The request is larger than {limit // 2**20} MB."
        )
    return body


def image_parts(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` of every part of a multipart body, or the whole body as one image."""
    if not content_type.lower().startswith("multipart/"):
        if not body:
            raise CustomVisionError("BadRequestImageBatch", "The request has no image data.")
        return [("imageData", body)]
    parts: list[tuple[str, bytes]] = []

    def on_field(field) -> None:
        name = (field.field_name or b"imageData").decode("utf-8", "replace")
        parts.append((name, field.value or b""))

    def on_file(file) -> None:
        file.file_object.seek(0)
        name = (file.file_name or file.field_name or b"imageData").decode("utf-8", "replace")
        parts.append((name, file.file_object.read()))
        file.close()

    try:
        headers = {"Content-Type": content_type.encode("latin-1")}
        parse_form(headers, BytesIO(body), on_field, on_file)
    except (FormParserError, ValueError) as exc:
        raise CustomVisionError(
            "UnsupportedMediaType", f"The multipart body cannot be read: {exc}"
        ) from None
    if not parts:
        raise CustomVisionError("BadRequestImageBatch", "The request has no imageData part.")
    return parts
