"""Toloka-style TSV: raw assignment results in, aggregated results out.

Quoting follows Toloka: a field holding a quote, tab or newline is quoted and its inner quotes
are doubled (``"monitor 24"" buy"``); that is the csv module's ``QUOTE_MINIMAL`` with a tab
delimiter. Row numbers in errors are spreadsheet rows: the header is row 1, the first data row
is row 2, and blank rows count.

Text cells that a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``+``, ``-``,
``@``, a leading tab or CR) are written with a leading ``'`` (OWASP's CSV-injection advice)
and read back without it; numbers such as ``-0.5`` are left alone.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import pandas as pd

PathOrFile = str | os.PathLike[str] | IO[str] | IO[bytes]

WORKER_COLUMN = "ASSIGNMENT:worker_id"
STATUS_COLUMN = "ASSIGNMENT:status"
KEY_SEPARATOR = "\t"
"""Joins the INPUT values of a row into its task key when there are several INPUT columns."""


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def spreadsheet_safe(value: Any) -> str:
    """``value`` as a cell no spreadsheet runs as a formula: a leading ``'`` when it starts
    (after any quotes of its own) with ``= + - @``, tab or CR, unless it is a plain number.

    Reversible with :func:`from_spreadsheet_safe`: ``'=x`` is written ``''=x``.
    """
    text = "" if value is None else str(value)
    bare = text.lstrip("'")
    if not bare or bare[0] not in FORMULA_START or _is_number(text):
        return text
    return "'" + text


def from_spreadsheet_safe(text: str) -> str:
    """The value :func:`spreadsheet_safe` wrote (its leading ``'`` removed)."""
    if text.startswith("'") and text.lstrip("'")[:1] in FORMULA_START and text.lstrip("'"):
        return text[1:]
    return text


class TsvError(ValueError):
    """A TSV file that cannot be read, naming the spreadsheet row and column at fault.

    Attributes:
        message: What is wrong.
        row: 1-based spreadsheet row (header = 1), or None for the whole file.
        column: Column name at fault, or None.
    """

    def __init__(self, message: str, row: int | None = None, column: str | None = None) -> None:
        self.message, self.row, self.column = message, row, column
        where = ", ".join(
            ([f"row {row}"] if row is not None else []) + ([f"column {column}"] if column else [])
        )
        super().__init__(f"{where}: {message}" if where else message)


def _is_binary(file: IO[str] | IO[bytes]) -> bool:
    return isinstance(file, io.RawIOBase | io.BufferedIOBase) or "b" in getattr(file, "mode", "")


@contextmanager
def _text(source: PathOrFile, mode: str) -> Iterator[IO[str]]:
    """Opens a path, or wraps a binary file object, as UTF-8 text (a BOM is skipped on read)."""
    encoding = "utf-8-sig" if mode == "r" else "utf-8"
    if isinstance(source, str | os.PathLike):
        with open(source, mode, encoding=encoding, newline="") as f:
            yield f
    elif _is_binary(source):
        binary = cast(IO[bytes], source)
        wrapper = io.TextIOWrapper(binary, encoding=encoding, newline="")  # type: ignore[type-var]
        try:
            yield wrapper
        finally:
            wrapper.detach()  # flushes; leaves the caller's file open
    else:
        yield cast(IO[str], source)


def _records(f: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """Yields ``(spreadsheet row, fields)``; turns csv and decoding errors into TsvError."""
    reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL, strict=True)
    row = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = f'bad quoting ({exc}); write a quote inside a field as ""'
            raise TsvError(message, row + 1) from None
        except UnicodeDecodeError as exc:
            raise TsvError(f"not UTF-8 text ({exc.reason})", row + 1) from None
        row += 1
        yield row, fields


def _header_index(header: list[str], output_field: str) -> tuple[list[int], int, int, int, int]:
    names = [h.strip() for h in header]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise TsvError(f"column {name!r} appears twice", 1, name)
        seen.add(name)
    inputs = [i for i, h in enumerate(names) if h.startswith("INPUT:")]
    if not inputs:
        raise TsvError("no INPUT:<field> column; the header needs e.g. INPUT:image", 1)
    output = f"OUTPUT:{output_field}"
    if output not in names:
        present = [h for h in names if h.startswith("OUTPUT:")]
        raise TsvError(f"no {output} column (OUTPUT columns here: {present})", 1, output)
    if WORKER_COLUMN not in names:
        raise TsvError(f"no {WORKER_COLUMN} column", 1, WORKER_COLUMN)
    golden = f"GOLDEN:{output_field}"

    def find(name: str) -> int:
        return names.index(name) if name in names else -1

    worker = names.index(WORKER_COLUMN)
    return inputs, names.index(output), worker, find(golden), find(STATUS_COLUMN)


@dataclass
class Assignments:
    """The answers of a raw results TSV as parallel lists (one entry per answer), no pandas.

    Attributes:
        task, worker, label: The answer's task key, worker id and label.
        golden: The row's ``GOLDEN`` value or None.
        row: The answer's spreadsheet row.
        input_fields: The INPUT field names in header order.
    """

    task: list[str] = field(default_factory=list)
    worker: list[str] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    golden: list[str | None] = field(default_factory=list)
    row: list[int] = field(default_factory=list)
    input_fields: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.task)

    def known(self) -> dict[str, str]:
        """Task -> GOLDEN label, for the tasks that have one (the first row's value)."""
        out: dict[str, str] = {}
        for task, golden in zip(self.task, self.golden, strict=True):
            if golden is not None:
                out.setdefault(task, golden)
        return out

    def to_frame(self) -> pd.DataFrame:
        """As :func:`read_assignments_tsv` returns them."""
        import pandas as pd

        frame = pd.DataFrame(
            {
                "task": self.task,
                "worker": self.worker,
                "label": self.label,
                "golden": self.golden,
                "row": self.row,
            },
            columns=["task", "worker", "label", "golden", "row"],
        )
        frame.attrs["input_fields"] = list(self.input_fields)
        return frame


def read_assignments_tsv(
    source: PathOrFile, output_field: str = "result", skip_rejected: bool = True
) -> pd.DataFrame:
    """Reads a Toloka-style raw results TSV into an answer table.

    :func:`read_assignments` as a DataFrame; see there.

    Returns:
        DataFrame with columns ``task, worker, label, golden, row``: ``golden`` is the row's
        ``GOLDEN:<output_field>`` value or None, ``row`` its spreadsheet row. Its ``attrs``
        hold ``input_fields``, the INPUT field names in header order.
    """
    return read_assignments(source, output_field, skip_rejected).to_frame()


def read_assignments(
    source: PathOrFile, output_field: str = "result", skip_rejected: bool = True
) -> Assignments:
    """Reads a Toloka-style raw results TSV into parallel lists (no pandas).

    The task key is the row's INPUT values (joined with a tab when there are several INPUT
    columns), the worker is ``ASSIGNMENT:worker_id`` and the label is ``OUTPUT:<output_field>``.
    Blank rows (Toloka's "separate assignments with empty row") are skipped, and so are rows
    with an empty OUTPUT cell (no answer). Rows whose ``ASSIGNMENT:status`` is ``REJECTED`` are
    skipped when ``skip_rejected`` (Toloka aggregates accepted work only).

    Args:
        source: Path, or a text or binary file object (UTF-8, a BOM is allowed).
        output_field: The OUTPUT field holding the label.
        skip_rejected: Drop rejected assignments.

    Returns:
        The answers; ``golden`` is the row's ``GOLDEN:<output_field>`` value or None.

    Raises:
        TsvError: Naming the row (and column) of the first problem: a missing column, a row
            with the wrong number of fields, bad quoting, an empty INPUT or worker id, or a task
            whose GOLDEN values disagree.
    """
    with _text(source, "r") as f:
        records = _records(f)
        first = next(records, None)
        if first is None or not any(first[1]):
            raise TsvError("the file is empty; the first row must be the header", 1)
        header = first[1]
        inputs, out_i, worker_i, golden_i, status_i = _header_index(header, output_field)
        tasks: list[str] = []
        workers: list[str] = []
        labels: list[str] = []
        goldens: list[str | None] = []
        rows: list[int] = []
        golden_of: dict[str, tuple[str, int]] = {}
        for row, fields in records:
            if not any(field.strip() for field in fields):
                continue
            if len(fields) != len(header):
                raise TsvError(f"{len(fields)} fields, but the header has {len(header)}", row)
            fields = [from_spreadsheet_safe(field) for field in fields]
            label = fields[out_i].strip()
            if not label:
                continue
            if skip_rejected and status_i >= 0 and fields[status_i].strip() == "REJECTED":
                continue
            values = [fields[i].strip() for i in inputs]
            if not any(values):
                raise TsvError("empty INPUT value", row, header[inputs[0]])
            task = KEY_SEPARATOR.join(values)
            worker = fields[worker_i].strip()
            if not worker:
                raise TsvError("empty worker id", row, WORKER_COLUMN)
            golden = fields[golden_i].strip() if golden_i >= 0 else ""
            if golden:
                earlier = golden_of.setdefault(task, (golden, row))
                if earlier[0] != golden:
                    raise TsvError(
                        f"GOLDEN {golden!r} disagrees with {earlier[0]!r} in row {earlier[1]}",
                        row,
                        header[golden_i],
                    )
            tasks.append(task)
            workers.append(worker)
            labels.append(label)
            goldens.append(golden or None)
            rows.append(row)
    fields = [header[i].strip().removeprefix("INPUT:") for i in inputs]
    return Assignments(tasks, workers, labels, goldens, rows, fields)


def known_answers(answers: pd.DataFrame) -> pd.Series:
    """Task -> GOLDEN label, for the tasks of :func:`read_assignments_tsv` that have one."""
    golden = answers.loc[answers["golden"].notna(), ["task", "golden"]]
    return golden.drop_duplicates("task").set_index("task")["golden"].rename("label")


def format_confidence(value: float) -> str:
    """Confidence with at most 4 decimals and no trailing zeros: 1 -> ``1``, 2/3 -> ``0.6667``.

    Raises:
        ValueError: Not a number in [0, 1].
    """
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"confidence {value!r} is not a number in [0, 1]")
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _rows(rows: pd.DataFrame | Iterable[Sequence[Any]]) -> Iterable[Sequence[Any]]:
    pandas = sys.modules.get("pandas")  # a DataFrame implies pandas is loaded already
    if pandas is not None and isinstance(rows, pandas.DataFrame):
        return rows[["task", "label", "confidence"]].itertuples(index=False, name=None)
    return rows


def write_aggregated_tsv(
    rows: pd.DataFrame | Iterable[Sequence[Any]],
    file: PathOrFile,
    input_field: str | Sequence[str] = "image",
    output_field: str = "result",
) -> int:
    """Writes aggregated results: ``INPUT:<f>``, ``OUTPUT:<f>``, ``CONFIDENCE:<f>``.

    Args:
        rows: ``task, label, confidence`` rows: a DataFrame with those columns (as returned by
            :func:`aggregation.aggregate`) or an iterable of 3-tuples.
        file: Path or text file object.
        input_field: INPUT field name; several names when task keys join several INPUT values
            with a tab (as :func:`read_assignments_tsv` makes them), which are split back.
        output_field: OUTPUT / CONFIDENCE field name.

    Returns:
        Number of data rows written.

    Raises:
        ValueError: A confidence outside [0, 1], or a task key with the wrong number of parts.
    """
    fields = [input_field] if isinstance(input_field, str) else list(input_field)
    header = [f"INPUT:{name}" for name in fields]
    header += [f"OUTPUT:{output_field}", f"CONFIDENCE:{output_field}"]
    count = 0
    with _text(file, "w") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(header)
        for task, label, confidence in _rows(rows):
            keys = [str(task)] if len(fields) == 1 else str(task).split(KEY_SEPARATOR)
            if len(keys) != len(fields):
                raise ValueError(f"task key {task!r} does not have {len(fields)} INPUT parts")
            cells = [spreadsheet_safe(cell) for cell in (*keys, label)]
            writer.writerow([*cells, format_confidence(float(confidence))])
            count += 1
    return count
