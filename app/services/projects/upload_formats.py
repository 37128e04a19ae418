"""Reading Toloka's task TSV (``INPUT:image``, ``GOLDEN:result``, ``HINT:text``, ``TASK:overlap``).

Pure parsing and validation against a context; nothing here touches the database.
Every problem names its row (the line number in the file; the header is row 1).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from urllib.parse import urlparse

from app.db.models import TaskKind
from app.errors import UploadRejected

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


@dataclass
class TsvContext:
    """What a TSV is checked against."""

    option_values: list[str]
    training_pool: bool = False
    existing_images: set[str] = field(default_factory=set)
    media_by_name: dict[str, tuple[int, str]] = field(default_factory=dict)


def is_url(text: str) -> bool:
    """An absolute http(s) URL."""
    parsed = urlparse(text)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def decode_text(data: bytes, *, what: str = "The file") -> str:
    """UTF-8 text (a BOM is dropped); anything else is refused with the byte offset."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UploadRejected(
            f"{what} is not UTF-8 text (bad byte at row {line}). Save it as UTF-8 and try again.",
            row=line,
        ) from None


def _reject(problems: list[tuple[int, str | None, str]]) -> UploadRejected:
    first_row, first_column, first = problems[0]
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    return UploadRejected(
        f"Nothing was imported: {first}{more}.",
        row=first_row,
        column=first_column,
        problems=[text for _, _, text in problems],
    )


def parse_task_tsv(data: bytes, context: TsvContext) -> list[TaskInput]:
    """Parse and check a whole TSV; any problem refuses the file with every row named."""
    text = decode_text(data)
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter="\t", quotechar='"', doublequote=True, strict=True
    )
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
    index = {name: i for i, name in enumerate(header)}
    options = set(context.option_values)
    problems: list[tuple[int, str | None, str]] = []
    seen: dict[str, int] = {}
    tasks: list[TaskInput] = []

    def problem(row: int, column: str | None, message: str) -> None:
        problems.append((row, column, f"row {row}: {message}"))

    row_number = 1
    while len(problems) < MAX_PROBLEMS:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problem(reader.line_num, None, f"the quoting is broken ({exc}); double inner quotes")
            break
        row_number = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            problem(row_number, None, f"expected {len(header)} columns, found {len(record)}")
            continue
        values = {name: record[i].strip() for name, i in index.items()}
        image = values["INPUT:image"]
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
        if image in seen:
            problem(row_number, "INPUT:image", f"duplicate of row {seen[image]} (same image)")
            continue
        seen[image] = row_number
        if image in context.existing_images:
            problem(row_number, "INPUT:image", "this image is already in the pool")
            continue
        golden = values.get("GOLDEN:result") or None
        hint = values.get("HINT:text") or None
        if golden is not None and golden not in options:
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
        tasks.append(
            TaskInput(
                image=image,
                media_id=media_id,
                known_answer=golden,
                hint=hint,
                overlap=overlap,
                kind=kind,
            )
        )
    if problems:
        raise _reject(problems)
    if not tasks:
        raise UploadRejected("The file has a header but no task rows.")
    return tasks
