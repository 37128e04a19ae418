"""Media files: verified images stored content-addressed in a local folder or any fsspec URL."""

from __future__ import annotations

import hashlib
import io
import logging
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import fsspec
from itsdangerous import BadData, URLSafeTimedSerializer
from PIL import Image, UnidentifiedImageError
from sqlmodel import Session, select

from app.db.models import MediaFile, User
from app.errors import MediaStoreUnavailable, NotFound, UploadRejected
from app.settings import get_settings

log = logging.getLogger("crowdlab.media")

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
}


@lru_cache(maxsize=4)
def _filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(url)
    return fs, root.rstrip("/")


def _store():
    return _filesystem(get_settings().resolved_media_url)


def _unreachable(exc: BaseException) -> bool:
    """Whether an error of the store's client comes from not reaching the store: a refused,
    reset or timed-out connection, or an unknown host, anywhere in the exception's chain
    (s3fs raises botocore's ``EndpointConnectionError`` over aiohttp's over the OS's)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError | TimeoutError | socket.gaierror):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def _reaching_store(action: str) -> Iterator[None]:
    """Turn "the store cannot be reached" into ``MediaStoreUnavailable`` (503, retry later)
    instead of an unexpected error (500); other errors pass unchanged."""
    try:
        yield
    except Exception as exc:
        if not _unreachable(exc):
            raise
        log.warning("media store unreachable while %s: %s", action, str(exc).splitlines()[0])
        raise MediaStoreUnavailable() from exc


def inspect_image(data: bytes, *, name: str) -> tuple[str, int, int]:
    """Check bytes are one real image within the limits; returns (content type, w, h).

    Raises ``UploadRejected`` naming the file for non-images, truncated files,
    oversized files and decompression bombs.
    """
    settings = get_settings()
    if len(data) > settings.max_image_bytes:
        raise UploadRejected(
            f"{name}: the file is {len(data) / 1e6:.1f} MB; the limit is "
            f"{settings.max_image_bytes / 1e6:.0f} MB.",
            file=name,
        )
    if not data:
        raise UploadRejected(f"{name}: the file is empty.", file=name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt, (width, height) = image.format, image.size
                if width * height > settings.max_image_pixels:
                    raise UploadRejected(
                        f"{name}: {width}×{height} pixels is more than the limit of "
                        f"{settings.max_image_pixels:,} (possible decompression bomb).",
                        file=name,
                    )
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except UploadRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadRejected(
            f"{name}: the image is too large to decode safely (decompression bomb).", file=name
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UploadRejected(
            f"{name}: not a readable image (the file is damaged, or it is not a JPEG, PNG "
            "or WebP picture).",
            file=name,
        ) from None
    if fmt not in CONTENT_TYPES:
        raise UploadRejected(
            f"{name}: {fmt} images are not supported; use JPEG, PNG or WebP.", file=name
        )
    return CONTENT_TYPES[fmt], width, height


def _storage_key(sha: str, content_type: str) -> str:
    return f"{sha[:2]}/{sha[2:4]}/{sha}.{EXTENSIONS[content_type]}"


def store_image(session: Session, *, owner: User, data: bytes, name: str) -> MediaFile:
    """Verify and store an image (deduplicated per owner by SHA-256); flushes, no commit."""
    content_type, width, height = inspect_image(data, name=name)
    sha = hashlib.sha256(data).hexdigest()
    existing = session.exec(
        select(MediaFile).where(MediaFile.owner_id == owner.id, MediaFile.sha256 == sha)
    ).first()
    if existing is not None:
        return existing
    key = _storage_key(sha, content_type)
    fs, root = _store()
    path = f"{root}/{key}"
    with _reaching_store("storing an image"):
        if not fs.exists(path):
            if _is_local(fs):  # written whole under another name, then renamed (atomic)
                fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
                tmp = f"{path}.tmp"
                with fs.open(tmp, "wb") as handle:
                    handle.write(data)
                fs.mv(tmp, path)
            else:  # an object store's PUT is atomic already (a rename would be copy + delete)
                fs.pipe_file(path, data)
    media = MediaFile(
        owner_id=owner.id,
        sha256=sha,
        size=len(data),
        width=width,
        height=height,
        content_type=content_type,
        original_name=name[-500:],
        storage_key=key,
    )
    session.add(media)
    session.flush()
    return media


def read_media(media: MediaFile) -> bytes:
    """The stored bytes of a media file."""
    return read_media_key(media.storage_key)


def read_media_key(storage_key: str) -> bytes:
    """The stored bytes at a media file's ``storage_key``."""
    fs, root = _store()
    with _reaching_store("reading an image"), fs.open(f"{root}/{storage_key}", "rb") as handle:
        return handle.read()


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def local_path(media: MediaFile) -> str | None:
    """A filesystem path for the file when the store is local (training reads from it)."""
    fs, root = _store()
    if _is_local(fs):
        return f"{root}/{media.storage_key}"
    return None


def get_media_by_sha(session: Session, *, sha256: str) -> MediaFile:
    """A media file by its hash, for services that already checked who asks (no access
    check here: the ``/media`` route uses ``get_owned_media`` or a signed URL)."""
    media = session.exec(select(MediaFile).where(MediaFile.sha256 == sha256)).first()
    if media is None:
        raise NotFound("No such image.")
    return media


def get_owned_media(session: Session, *, owner_id: int, sha256: str) -> MediaFile:
    """One of ``owner_id``'s media files by hash (one unique-index lookup); anyone else's,
    or an unknown hash, is ``NotFound``."""
    media = session.exec(
        select(MediaFile).where(MediaFile.owner_id == owner_id, MediaFile.sha256 == sha256)
    ).first()
    if media is None:
        raise NotFound("No such image.")
    return media


def media_url(media: MediaFile) -> str:
    """The URL that serves a media file to its owner (logged in or with an API token)."""
    return f"/media/{media.sha256}.{EXTENSIONS.get(media.content_type, 'bin')}"


def signed_media_url(media: MediaFile) -> str:
    """A URL that serves the file to whoever holds it, for ``SIGNED_MEDIA_MAX_AGE`` seconds
    (Custom Vision clients fetch image URLs without credentials, like Azure's SAS links)."""
    return f"{media_url(media)}?sig={_media_signer().dumps(media.sha256)}"


SIGNED_MEDIA_MAX_AGE = 24 * 3600


@lru_cache(maxsize=4)
def _signer_for(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="crowdlab.media")


def _media_signer() -> URLSafeTimedSerializer:
    return _signer_for(get_settings().resolved_secret_key)


def signature_allows(sha256: str, signature: str | None) -> bool:
    """Whether ``signature`` (the ``sig`` of a signed URL) is current and for this hash."""
    if not signature:
        return False
    try:
        return _media_signer().loads(signature, max_age=SIGNED_MEDIA_MAX_AGE) == sha256
    except BadData:
        return False
