"""Reading Toloka's task TSV (``INPUT:image``, ``GOLDEN:result``, ``HINT:text``, ``TASK:overlap``).

Pure parsing and validation against a context; nothing here touches the database.
Every problem names its row (the line number in the file; the header is row 1).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urlparse

from app.db.models import TaskKind
from app.errors import UploadRejected
from app.services import answer_sets

COLUMNS = ("INPUT:image", "GOLDEN:result", "HINT:text", "TASK:overlap")
MAX_PROBLEMS = 50
MAX_OVERLAP = 1000


@dataclass
class TaskInput:
    """One task to create; ``kind`` is derived from the known answer and hint when None."""

    image: str
    media_id: int | None = None
    known_answer: str | None = None
    hint: str | None = None
    overlap: int | None = None
    kind: str | None = None
    input_values: dict | None = None
    suite_id: int | None = None  # a task suite the requester composed
    # Toloka's preliminary answers (e.g. a model's): [{"output_values": {"result": v},
    # "confidence_weight": 0..1}], weighed into dynamic overlap's confidence
    baseline_solutions: list | None = None


@dataclass
class TsvContext:
    """What a TSV is checked against."""

    option_values: list[str]
    training_pool: bool = False
    multiple: bool = False  # several answers: GOLDEN:result is a JSON list of values
    allow_none: bool = False  # ... and may be [] ("none of these")
    existing_images: set[str] = field(default_factory=set)
    media_by_name: dict[str, tuple[int, str]] = field(default_factory=dict)


def requester_image(
    input_values: dict | None, image: str, original_name: str | None, *, base: str
) -> str:
    """What the requester gave for a task's image, for exports: the URL, or the name of
    the uploaded file (tasks made before names were kept fall back to the stored file's
    name, then to its address). ``image`` is where the task's image is served from."""
    given = (input_values or {}).get("image")
    if isinstance(given, str) and given and not given.startswith("/"):
        return given
    if original_name and image.startswith("/"):
        return original_name
    return base.rstrip("/") + image if image.startswith("/") else image


def is_url(text: str) -> bool:
    """An absolute http(s) URL."""
    parsed = urlparse(text)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def sentence(first: str, count: int) -> str:
    """``Nothing was imported: <first problem> and N more.`` (one final period)."""
    more = f" and {count - 1} more" if count > 1 else ""
    return f"Nothing was imported: {first.rstrip('.')}{more}."


def reject(
    problems: list[tuple[int, str | None, str]],
    failures: list[dict] | None = None,
    *,
    total: int | None = None,
) -> UploadRejected:
    """One refusal for ``(row, column, text)`` problems, naming the first; ``failures``
    (``{"row", "item", "reason"}`` each) travel in its payload for a per-row report;
    ``total``: how many problems there are when only some are given."""
    first_row, first_column, first = problems[0]
    exc = UploadRejected(
        sentence(first, total or len(problems)),
        row=first_row,
        column=first_column,
        problems=[text for _, _, text in problems],
    )
    if failures:
        exc.payload["failures"] = failures
    return exc


def failure(row: int | None, item: str, reason: str) -> dict:
    """One row or file left out of an upload: where, what (URL or file name), why."""
    return {"row": row, "item": item, "reason": reason.rstrip(".")}


class Skipped(list):
    """The rows or files an upload left out (``failure`` dicts): the first
    ``MAX_LISTED`` are kept for the report, ``total`` counts them all."""

    MAX_LISTED = 1000

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def add(self, entry: dict) -> None:
        """Count one more left-out row or file (kept when the list has room)."""
        self.total += 1
        if len(self) < self.MAX_LISTED:
            self.append(entry)


def _text_lines(stream: BinaryIO) -> Iterator[str]:
    """The file's lines as text, decoded one by one so a bad byte is named by its row."""
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise UploadRejected(
                f"The file is not UTF-8 text (bad byte at row {number}). "
                "Save it as UTF-8 and try again.",
                row=number,
            ) from None
        yield line


def _header(reader) -> list[str]:
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise UploadRejected(f"Row 1: the header cannot be read ({exc}).", row=1) from None
    if not header or not any(cell.strip() for cell in header):
        raise UploadRejected("The file is empty: the first row must be a header like INPUT:image.")
    header = [cell.strip() for cell in header]
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise UploadRejected(
            f"Row 1: unknown column(s) {', '.join(repr(u) for u in unknown)}; "
            f"allowed: {', '.join(COLUMNS)}.",
            row=1,
            column=unknown[0],
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UploadRejected(
            f"Row 1: column {repeated[0]} appears twice.", row=1, column=repeated[0]
        )
    if "INPUT:image" not in header:
        raise UploadRejected("Row 1: the header needs an INPUT:image column.", row=1)
    return header


def parse_task_tsv(
    data: bytes | BinaryIO, context: TsvContext, *, skipped: Skipped | None = None
) -> list[TaskInput]:
    """Parse and check a whole (small) TSV; any problem refuses the file, every row named
    (or, given a ``skipped`` list, the bad rows are left out and listed there)."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return [task for _, task in iter_task_tsv(stream, context, skipped=skipped)]


def iter_task_tsv(
    stream: BinaryIO,
    context: TsvContext,
    *,
    check_duplicates: bool = True,
    skipped: Skipped | None = None,
) -> Iterator[tuple[int, TaskInput]]:
    """Read a TSV row by row, yielding ``(row, task)`` for each good row; after the last
    row, any problem (up to ``MAX_PROBLEMS``, each naming its row) raises UploadRejected.

    Given a ``skipped`` list, the requester chose to import the good rows: a bad row is
    appended there (``failure``) and reading goes on; only a file with no good row at all
    is refused. The header must be right either way.

    Memory stays flat whatever the file size, except for the duplicate check, which
    remembers every image: a caller streaming a large file passes
    ``check_duplicates=False`` and checks duplicates and images already in the pool
    itself (see ``duplicate_problems``), and leaves ``context.existing_images`` empty.
    """
    reader = csv.reader(
        _text_lines(stream), delimiter="\t", quotechar='"', doublequote=True, strict=True
    )
    header = _header(reader)
    index = {name: i for i, name in enumerate(header)}
    options = set(context.option_values)
    problems: list[tuple[int, str | None, str]] = []
    seen: dict[str, int] = {}
    found_any = False

    item = ""

    def problem(row: int, column: str | None, message: str) -> None:
        if skipped is not None:
            skipped.add(failure(row, item, message))
            if len(problems) < MAX_PROBLEMS:
                problems.append((row, column, f"row {row}: {message}"))
            return
        problems.append((row, column, f"row {row}: {message}"))

    row_number = 1
    while skipped is not None or len(problems) < MAX_PROBLEMS:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problem(reader.line_num, None, f"the quoting is broken ({exc}); double inner quotes")
            break
        row_number = reader.line_num
        item = record[index["INPUT:image"]].strip() if len(record) == len(header) else ""
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            problem(row_number, None, f"expected {len(header)} columns, found {len(record)}")
            continue
        values = {name: record[i].strip() for name, i in index.items()}
        nul = next((name for name, value in values.items() if "\x00" in value), None)
        if nul is not None:
            problem(row_number, nul, f"{nul} contains a NUL byte (\\0); remove it")
            continue
        image = given = values["INPUT:image"]
        media_id = None
        if not image:
            problem(row_number, "INPUT:image", "INPUT:image is empty")
            continue
        if not is_url(image):
            found = context.media_by_name.get(image)
            if found is None:
                problem(
                    row_number,
                    "INPUT:image",
                    f"INPUT:image {image!r} is neither an http(s) URL nor the name of an "
                    "uploaded image",
                )
                continue
            media_id, image = found
        if check_duplicates:
            if image in seen:
                problem(row_number, "INPUT:image", duplicate_message(seen[image]))
                continue
            seen[image] = row_number
        if image in context.existing_images:
            problem(row_number, "INPUT:image", ALREADY_IN_POOL)
            continue
        golden = values.get("GOLDEN:result") or None
        hint = values.get("HINT:text") or None
        if golden is not None and context.multiple:
            try:
                golden = answer_sets.normalize(
                    golden, context.option_values, allow_none=context.allow_none
                )
            except answer_sets.BadAnswer as exc:
                problem(row_number, "GOLDEN:result", f"GOLDEN:result {golden!r}: {exc}")
                continue
        elif golden is not None and golden not in options:
            problem(
                row_number,
                "GOLDEN:result",
                f"GOLDEN:result {golden!r} is not an answer option value "
                f"(allowed: {', '.join(context.option_values)})",
            )
            continue
        if hint and golden is None:
            problem(row_number, "HINT:text", "HINT:text needs a GOLDEN:result in the same row")
            continue
        overlap = None
        raw_overlap = values.get("TASK:overlap") or ""
        if raw_overlap:
            try:
                overlap = int(raw_overlap)
            except ValueError:
                overlap = 0
            if not 1 <= overlap <= MAX_OVERLAP:
                problem(
                    row_number,
                    "TASK:overlap",
                    f"TASK:overlap {raw_overlap!r} is not a whole number from 1 to {MAX_OVERLAP}",
                )
                continue
        if golden is None:
            kind = TaskKind.GENERAL
        elif hint or context.training_pool:
            kind = TaskKind.TRAINING
        else:
            kind = TaskKind.CONTROL
        found_any = True
        if not problems or skipped is not None:  # once refused, nothing more is stored
            yield (
                row_number,
                TaskInput(
                    image=image,
                    media_id=media_id,
                    known_answer=golden,
                    hint=hint,
                    overlap=overlap,
                    kind=kind,
                    input_values={"image": given},  # what the requester wrote
                ),
            )
    if problems and (skipped is None or not found_any):
        raise reject(problems, list(skipped or []))
    if not found_any:
        raise UploadRejected("The file has a header but no task rows.")


ALREADY_IN_POOL = "this image is already in the pool"


def duplicate_message(first_row: int) -> str:
    """The problem text for a row repeating the image of ``first_row``."""
    return f"duplicate of row {first_row} (same image)"
