"""Safe reading of ZIP datasets of class folders (``Dataset/ClassName/img.jpg``).

Refuses path traversal (zip-slip), absolute paths, symlinks, nested archives,
decompression bombs (by declared size, ratio and entry count) and non-images, always
naming the offending entry. Nothing is extracted to disk.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from app.errors import UploadRejected
from app.settings import get_settings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}
IGNORED_PARTS = {"__MACOSX", ".DS_Store", "Thumbs.db"}


@dataclass(frozen=True)
class DatasetEntry:
    """One image of a class-folder archive."""

    path: str
    label: str
    info: zipfile.ZipInfo


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def scan_class_folders(file: BinaryIO) -> tuple[zipfile.ZipFile, list[DatasetEntry]]:
    """Check a ZIP of class folders and list its images with their class (folder name).

    Layout: ``Class/img.jpg`` or ``Dataset/Class/img.jpg`` (one top folder is allowed).
    """
    settings = get_settings()
    try:
        archive = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        raise UploadRejected("The file is not a ZIP archive.") from None
    infos = archive.infolist()
    if len(infos) > settings.max_zip_entries:
        raise UploadRejected(
            f"The archive has {len(infos):,} entries; the limit is {settings.max_zip_entries:,}."
        )
    total = 0
    files: list[tuple[PurePosixPath, zipfile.ZipInfo]] = []
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        if name.startswith(("/", "\\")) or ".." in path.parts or ":" in name or "\\" in name:
            raise UploadRejected(f"Unsafe path in archive: {name!r} (path traversal).", file=name)
        if _is_symlink(info):
            raise UploadRejected(f"Symbolic links are not allowed: {name!r}.", file=name)
        if info.is_dir() or any(
            part in IGNORED_PARTS or part.startswith("._") for part in path.parts
        ):
            continue
        suffix = path.suffix.lower()
        if suffix in ARCHIVE_SUFFIXES:
            raise UploadRejected(f"Nested archives are not allowed: {name!r}.", file=name)
        if info.file_size > settings.max_image_bytes:
            raise UploadRejected(
                f"{name!r} unpacks to {info.file_size / 1e6:.1f} MB; the limit per image is "
                f"{settings.max_image_bytes / 1e6:.0f} MB.",
                file=name,
            )
        if info.compress_size and info.file_size / info.compress_size > settings.max_zip_ratio:
            raise UploadRejected(
                f"{name!r} has a compression ratio of {info.file_size // info.compress_size}:1 "
                "(possible zip bomb).",
                file=name,
            )
        total += info.file_size
        if total > settings.max_upload_bytes * 5:
            raise UploadRejected("The archive unpacks to too much data (possible zip bomb).")
        if suffix not in IMAGE_SUFFIXES:
            raise UploadRejected(
                f"{name!r} is not an image (allowed: {', '.join(sorted(IMAGE_SUFFIXES))}).",
                file=name,
            )
        files.append((path, info))
    if not files:
        raise UploadRejected("The archive contains no images.")
    depths = {len(path.parts) for path, _ in files}
    if depths == {2}:
        strip = 0
    elif depths == {3} and len({path.parts[0] for path, _ in files}) == 1:
        strip = 1
    else:
        bad = next(path for path, _ in files if len(path.parts) not in (2, 3))
        raise UploadRejected(
            f"Put every image in a class folder (Class/image.jpg or Dataset/Class/image.jpg); "
            f"{str(bad)!r} is not.",
            file=str(bad),
        )
    entries = [
        DatasetEntry(path=str(path), label=path.parts[strip], info=info) for path, info in files
    ]
    return archive, entries


def read_entry(archive: zipfile.ZipFile, entry: DatasetEntry) -> bytes:
    """The bytes of one entry, stopping at the size limit whatever the header claims."""
    limit = get_settings().max_image_bytes
    with archive.open(entry.info) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UploadRejected(f"{entry.path!r} is larger than the per-image limit.", file=entry.path)
    return data


def iter_images(
    archive: zipfile.ZipFile, entries: list[DatasetEntry]
) -> Iterator[tuple[DatasetEntry, bytes]]:
    """Each entry with its bytes."""
    for entry in entries:
        yield entry, read_entry(archive, entry)
