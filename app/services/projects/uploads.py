"""Data upload into a pool: task TSV, loose image files, or a ZIP of class folders; or
images stored only (``media``), for a task TSV to name them by file name.

Every upload is checked completely first (naming the bad rows or files), then written in
one transaction: all or nothing, unless the requester chose to import the good rows or
files and have the bad ones listed (``skip_bad``). A task keeps what the requester gave
for its image (the URL, or the file name) in ``input_values["image"]``; ``Task.image`` is
the address it is served from. Image URLs in a TSV are checked by the upload job.

Uploads with more items than ``settings.upload_job_threshold`` run as a background job
with a progress bar; a large TSV is streamed and staged in short batches
(``upload_batches``), then moved into the pool in one statement.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import uuid
import zipfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import func
from sqlmodel import Session, select

from aggregation.incremental import confidence, preliminary_scores
from app.db.engine import refresh_statistics
from app.db.models import Job, MediaFile, Pool, PoolStatus, Project, Task, TaskKind, User
from app.db.models.pool import PoolType
from app.errors import Conflict, NotFound, UploadRejected, ValidationFailed
from app.services import answer_sets
from app.services.jobs import records as jobs
from app.services.media import store as media
from app.services.projects import archive
from app.services.projects.pool_model import queue_model_predictions
from app.services.projects.pools import get_pool
from app.services.projects.projects import (
    add_options,
    has_open_pool,
    list_options,
    normalize_answer,
)
from app.services.projects.upload_formats import (
    Skipped,
    TaskInput,
    TsvContext,
    failure,
    is_url,
    parse_task_tsv,
    sentence,
)
from app.settings import get_settings

Progress = Callable[[float, str], None]
KINDS = ("tsv", "images", "zip", "media")
KIND_ERROR = "tsv, images, zip or media"
UploadData = bytes | BinaryIO  # a file's content, or a binary file object to stream it from


def _no_progress(_fraction: float, _message: str = "") -> None:
    return None


@dataclass
class UploadResult:
    """What an upload created."""

    created: dict[str, int]
    created_options: list[str] = field(default_factory=list)
    stored_images: int = 0  # images stored without tasks (``media`` uploads)
    skipped: list[dict] = field(default_factory=list)  # rows/files left out (``failure``)
    skipped_total: int = 0

    @property
    def total(self) -> int:
        """Tasks created, all kinds."""
        return sum(self.created.values())

    def as_dict(self) -> dict:
        """JSON-able form (a job's result)."""
        return {
            "created": self.created,
            "created_options": self.created_options,
            "stored_images": self.stored_images,
            "skipped": self.skipped,
            "skipped_total": self.skipped_total,
        }


@dataclass
class UploadOutcome:
    """Either the finished result (small uploads) or the job that runs it (large ones)."""

    result: UploadResult | None = None
    job: Job | None = None


@dataclass
class _Blob:
    name: str
    sha: str
    load: Callable[[], bytes]


@dataclass
class _Prepared:
    tasks: list[tuple[TaskInput, int | None]]  # (task, index into blobs or None)
    blobs: list[_Blob] = field(default_factory=list)
    new_options: list[str] = field(default_factory=list)
    skipped: Skipped | None = None  # the requester chose to import the good ones
    store_only: bool = False  # images stored, no tasks made


def _context(session: Session, pool: Pool, *, existing: bool = True) -> TsvContext:
    project = session.get(Project, pool.project_id)
    images = (
        set(session.exec(select(Task.image).where(Task.pool_id == pool.id))) if existing else set()
    )
    by_name: dict[str, tuple[int, str]] = {}
    newest_first = select(MediaFile).where(MediaFile.owner_id == pool.owner_id)
    for item in session.exec(newest_first.order_by(MediaFile.id.desc())):
        by_name.setdefault(item.original_name, (item.id, media.media_url(item)))
    return TsvContext(
        option_values=[o.value for o in list_options(session, project=project)],
        training_pool=pool.pool_type == PoolType.TRAINING,
        multiple=project.answer_type == answer_sets.MULTIPLE,
        allow_none=project.allow_none,
        existing_images=images,
        media_by_name=by_name,
    )


def _check_pool(pool: Pool) -> None:
    if pool.status == PoolStatus.ARCHIVED:
        raise Conflict("This pool is archived; tasks cannot be added.")


def _prepare_tsv(context: TsvContext, data: UploadData, skipped: Skipped | None) -> _Prepared:
    tasks = parse_task_tsv(data, context, skipped=skipped)
    return _Prepared(tasks=[(task, None) for task in tasks], skipped=skipped)


def _stream(data: UploadData) -> BinaryIO:
    if isinstance(data, bytes | bytearray):
        return io.BytesIO(data)
    data.seek(0)
    return data


def _size(data: UploadData) -> int:
    if isinstance(data, bytes | bytearray):
        return len(data)
    data.seek(0, io.SEEK_END)
    size = data.tell()
    data.seek(0)
    return size


def _content(data: UploadData) -> bytes:
    return data if isinstance(data, bytes) else _stream(data).read()


def _more_lines_than(data: UploadData, limit: int) -> bool:
    stream, lines = _stream(data), 0
    while chunk := stream.read(1 << 16):
        lines += chunk.count(b"\n")
        if lines > limit:
            break
    stream.seek(0)
    return lines > limit


def _refuse_files(problems: list[tuple[str, str]]) -> UploadRejected:
    """Nothing imported, for ``(file name, reason)`` problems (each file named)."""
    texts = [f"{name}: {reason.rstrip('.')}" for name, reason in problems]
    exc = UploadRejected(sentence(texts[0], len(texts)), file=problems[0][0], problems=texts)
    exc.payload["failures"] = [failure(None, name, reason) for name, reason in problems]
    return exc


def _inspect_blobs(
    named: Sequence[tuple[str, Callable[[], bytes]]],
    progress: Progress,
    skipped: Skipped | None = None,
) -> list[_Blob]:
    """Verify every image (Pillow) and refuse duplicates; all problems at once (or, with
    ``skipped``, leave the bad files out and list them there)."""
    problems: list[tuple[str, str]] = []  # (file name, reason)
    blobs: list[_Blob] = []
    seen: dict[str, str] = {}
    total = max(len(named), 1)
    for i, (name, load) in enumerate(named):
        try:
            data = load()
            media.inspect_image(data, name=name)
        except UploadRejected as exc:
            problems.append((name, exc.message.removeprefix(f"{name}: ")))
        else:
            sha = hashlib.sha256(data).hexdigest()
            if sha in seen:
                problems.append((name, f"the same image as {seen[sha]}"))
            else:
                seen[sha] = name
                blobs.append(_Blob(name=name, sha=sha, load=load))
        if skipped is None and len(problems) >= 50:
            break
        progress(0.8 * (i + 1) / total, f"Checked {i + 1} of {len(named)} images")
    if problems and (skipped is None or not blobs):
        raise _refuse_files(problems)
    for name, reason in problems:
        skipped.add(failure(None, name, reason))
    return blobs


def _prepare_images(
    files: Sequence[tuple[str, bytes]],
    progress: Progress,
    *,
    skipped: Skipped | None,
    store_only: bool = False,
) -> _Prepared:
    if not files:
        raise UploadRejected("Choose at least one image file.")
    named = [(name, (lambda d=data: d)) for name, data in files]
    blobs = _inspect_blobs(named, progress, skipped)
    tasks = [] if store_only else [(TaskInput(image=""), i) for i in range(len(blobs))]
    return _Prepared(tasks=tasks, blobs=blobs, skipped=skipped, store_only=store_only)


def _prepare_zip(
    context: TsvContext,
    file: io.BufferedIOBase | io.BytesIO,
    *,
    general_count: int,
    create_missing_options: bool,
    progress: Progress,
    skipped: Skipped | None = None,
) -> _Prepared:
    zip_file, entries = archive.scan_class_folders(file)
    labels = sorted({entry.label for entry in entries})
    unknown = [label for label in labels if label not in context.option_values]
    if unknown and not create_missing_options:
        exc = UploadRejected(
            f"Folder names must match answer option values; not options: {', '.join(unknown)}. "
            "Rename the folders, or choose to create the missing options.",
            file=unknown[0],
            problems=[f"{label}: no answer option has this value" for label in unknown],
        )
        exc.payload["unknown_labels"] = unknown
        raise exc
    if not 0 <= general_count <= len(entries):
        raise ValidationFailed(
            f"Choose between 0 and {len(entries)} images to add as general tasks too.",
            errors={"general_count": f"Between 0 and {len(entries)}."},
        )
    named = [(e.path, (lambda e=e: archive.read_entry(zip_file, e))) for e in entries]
    blobs = _inspect_blobs(named, progress, skipped)
    label_of = {entry.path: entry.label for entry in entries}
    known_of = dict(label_of)
    if context.multiple:  # several answers: a folder is the set of its one option
        known_of = {path: answer_sets.encode([label], [label]) for path, label in label_of.items()}
    tasks = [
        (TaskInput(image="", known_answer=known_of[b.name], kind=TaskKind.CONTROL), i)
        for i, b in enumerate(blobs)
    ]
    # A chosen number also go in as general tasks, taken round-robin across classes.
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, blob in enumerate(blobs):
        by_label[label_of[blob.name]].append(i)
    chosen: list[int] = []
    while len(chosen) < general_count:
        for label in labels:
            if by_label[label] and len(chosen) < general_count:
                chosen.append(by_label[label].pop(0))
    tasks += [(TaskInput(image="", kind=TaskKind.GENERAL), i) for i in sorted(chosen)]
    return _Prepared(tasks=tasks, blobs=blobs, new_options=unknown, skipped=skipped)


def _kind_of(item: TaskInput, pool: Pool) -> str:
    if item.kind:
        return item.kind
    if item.known_answer is None:
        return TaskKind.GENERAL
    if item.hint or pool.pool_type == PoolType.TRAINING:
        return TaskKind.TRAINING
    return TaskKind.CONTROL


def _write(
    session: Session, *, requester: User, pool: Pool, prepared: _Prepared
) -> tuple[UploadResult, list[Task]]:
    """Store media and insert the tasks (flush only)."""
    if pool.fixed_suites and any(item.suite_id is None for item, _ in prepared.tasks):
        raise Conflict(
            "This pool hands out the task suites you composed; add tasks to it as task suites."
        )
    if prepared.new_options:
        project = session.get(Project, pool.project_id)
        if has_open_pool(session, project=project):
            raise Conflict("Answer options cannot be added while a pool of this project is open.")
        add_options(session, project=project, values=prepared.new_options)
    stored: list[MediaFile | None] = []
    in_pool = set(session.exec(select(Task.media_id).where(Task.pool_id == pool.id)))
    already: list[str] = []
    for blob in prepared.blobs:
        item = media.store_image(session, owner=requester, data=blob.load(), name=blob.name)
        if prepared.store_only and item.original_name != blob.name[-500:]:
            item.original_name = blob.name[-500:]  # a TSV names it as last uploaded
            session.add(item)
        if item.id in in_pool and not prepared.store_only:
            already.append(blob.name)
            stored.append(None)
            continue
        stored.append(item)
    if already:
        reason = "this image is already in the pool"
        if prepared.skipped is None or len(already) == len(prepared.blobs):
            raise _refuse_files([(name, reason) for name in already])
        for name in already:
            prepared.skipped.add(failure(None, name, reason))
    position = session.exec(
        select(func.coalesce(func.max(Task.position), -1)).where(Task.pool_id == pool.id)
    ).one()
    created: dict[str, int] = {kind.value: 0 for kind in TaskKind}
    tasks: list[Task] = []
    values: list[str] | None = None
    for item, blob_index in prepared.tasks:
        media_id, image, given = item.media_id, item.image, item.input_values
        if blob_index is not None:
            blob_media = stored[blob_index]
            if blob_media is None:  # already in the pool, left out
                continue
            media_id, image = blob_media.id, media.media_url(blob_media)
            given = {"image": prepared.blobs[blob_index].name}  # the file name uploaded
        position += 1
        kind = _kind_of(item, pool)
        task = Task(
            pool_id=pool.id,
            kind=kind,
            image=image,
            input_values=given or {"image": image},
            media_id=media_id,
            known_answer=item.known_answer if kind != TaskKind.GENERAL else None,
            hint=item.hint,
            overlap=item.overlap,
            position=position,
            suite_id=item.suite_id,
        )
        if item.baseline_solutions and kind == TaskKind.GENERAL:
            if values is None:
                project = session.get(Project, pool.project_id)
                values = [o.value for o in list_options(session, project=project)]
            task.baseline_solutions = item.baseline_solutions
            prior = preliminary_scores(item.baseline_solutions, None, model=None, values=values)
            task.confidence = confidence(prior, values)
        session.add(task)
        tasks.append(task)
        created[kind] += 1
    session.flush()
    skipped = prepared.skipped
    result = UploadResult(
        created=created,
        created_options=prepared.new_options,
        stored_images=len(stored) if prepared.store_only else 0,
        skipped=list(skipped or []),
        skipped_total=skipped.total if skipped is not None else 0,
    )
    return result, tasks


def add_tasks(
    session: Session, *, requester: User, pool_id: int, items: Sequence[TaskInput]
) -> list[Task]:
    """Add tasks given as data (image URL or media id, known answer, hint, overlap)."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    _check_pool(pool)
    project = session.get(Project, pool.project_id)
    values = [o.value for o in list_options(session, project=project)]
    errors: dict[str, str] = {}
    for i, item in enumerate(items):
        if not item.image or not (is_url(item.image) or item.image.startswith("/media/")):
            errors[f"{i}.input_values.image"] = "An http(s) URL of an image is required."
        if item.known_answer is not None:
            try:
                item.known_answer = normalize_answer(project, values, item.known_answer)
            except answer_sets.BadAnswer as exc:
                errors[f"{i}.known_solutions"] = f"{item.known_answer!r}: {exc}."

        if item.overlap is not None and not 1 <= item.overlap <= 1000:
            errors[f"{i}.overlap"] = "Overlap is between 1 and 1000."
    if errors:
        raise ValidationFailed("Some tasks are invalid; none was added.", errors=errors)
    _, tasks = _write(
        session,
        requester=requester,
        pool=pool,
        prepared=_Prepared(tasks=[(item, None) for item in items]),
    )
    session.commit()
    refresh_statistics(session, table="task", rows=len(tasks))
    queue_model_predictions(session, pool=pool)
    for task in tasks:
        session.refresh(task)
    return tasks


def _prepare(
    context: TsvContext,
    kind: str,
    files: Sequence[tuple[str, UploadData]] | None,
    zip_file,
    *,
    general_count: int,
    create_missing_options: bool,
    progress: Progress,
    skip_bad: bool = False,
) -> _Prepared:
    skipped = Skipped() if skip_bad else None
    if kind == "tsv":
        if not files:
            raise UploadRejected("Choose a TSV file.")
        return _prepare_tsv(context, _stream(files[0][1]), skipped)
    if kind in ("images", "media"):
        return _prepare_images(files or [], progress, skipped=skipped, store_only=kind == "media")
    if kind == "zip":
        return _prepare_zip(
            context,
            zip_file,
            general_count=general_count,
            create_missing_options=create_missing_options,
            progress=progress,
            skipped=skipped,
        )
    raise ValidationFailed(f"Unknown upload kind {kind!r}.", errors={"kind": KIND_ERROR})


def _names_urls(data: UploadData) -> bool:
    """Whether a TSV may hold image URLs (checked by the upload job, in the background)."""
    stream, tail = _stream(data), b""
    while chunk := stream.read(1 << 16):
        text = (tail + chunk).lower()
        if b"http://" in text or b"https://" in text:
            stream.seek(0)
            return True
        tail = chunk[-8:].lower()
    stream.seek(0)
    return False


def _is_large(kind: str, files: Sequence[tuple[str, UploadData]], threshold: int) -> bool:
    if not files:
        return False
    if kind in ("images", "media"):
        return len(files) > threshold
    if kind == "tsv":
        return _more_lines_than(files[0][1], threshold) or (
            get_settings().check_image_urls and _names_urls(files[0][1])
        )
    try:
        return len(zipfile.ZipFile(_stream(files[0][1])).infolist()) > threshold
    except zipfile.BadZipFile:
        return False


def submit_upload(
    session: Session,
    *,
    requester: User,
    pool_id: int,
    kind: str,
    files: Sequence[tuple[str, UploadData]],
    general_count: int = 0,
    create_missing_options: bool = False,
    skip_bad: bool = False,
) -> UploadOutcome:
    """Import now when small; otherwise save the files and start an ``upload`` job (a
    TSV that names image URLs always goes to the job, which checks the URLs).

    A file is its bytes or a binary file object (read from the start, streamed).
    ``skip_bad``: import the good rows or files and list the bad ones, instead of
    refusing the whole upload."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    _check_pool(pool)
    settings = get_settings()
    size = sum(_size(data) for _, data in files)
    if size > settings.max_upload_bytes:
        raise UploadRejected(
            f"The upload is {size / 1e6:.0f} MB; "
            f"the limit is {settings.max_upload_bytes / 1e6:.0f} MB."
        )
    if kind not in KINDS:
        raise ValidationFailed(f"Unknown upload kind {kind!r}.", errors={"kind": KIND_ERROR})
    if _is_large(kind, files, settings.upload_job_threshold):
        folder = settings.data_dir / "uploads" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        names = []
        for i, (name, data) in enumerate(files):
            with open(folder / f"{i:06d}", "wb") as out:
                shutil.copyfileobj(_stream(data), out, 1 << 16)
            names.append(name)
        job = jobs.submit_job(
            session,
            kind="upload",
            owner=requester,
            payload={
                "pool_id": pool.id,
                "kind": kind,
                "folder": str(folder),
                "names": names,
                "general_count": general_count,
                "create_missing_options": create_missing_options,
                "skip_bad": skip_bad,
                "operation_type": "TASK.BATCH_CREATE",
                "parameters": {"pool_id": f"{pool.id:010d}"},
            },
        )
        return UploadOutcome(job=job)
    context = _context(session, pool)
    zip_file = _stream(files[0][1]) if kind == "zip" and files else None
    if kind == "zip" and zip_file is None:
        raise UploadRejected("Choose a ZIP file.")
    if kind in ("images", "media"):
        files = [(name, _content(data)) for name, data in files]
    prepared = _prepare(
        context,
        kind,
        files,
        zip_file,
        general_count=general_count,
        create_missing_options=create_missing_options,
        progress=_no_progress,
        skip_bad=skip_bad,
    )
    result, _ = _write(session, requester=requester, pool=pool, prepared=prepared)
    session.commit()
    refresh_statistics(session, table="task", rows=result.total)
    queue_model_predictions(session, pool=pool)
    return UploadOutcome(result=result)


def get_upload_job(session: Session, *, requester: User, pool_id: int, job_id: int) -> Job:
    """One of the requester's upload jobs into this pool (anything else is ``NotFound``)."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    job = jobs.get_job(session, owner=requester, job_id=job_id)
    if job.kind != "upload" or (job.payload or {}).get("pool_id") != pool.id:
        raise NotFound("No such upload.")
    return job
