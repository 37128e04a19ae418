"""Wire conventions shared by the Toloka-style endpoints: ids, dates, paging, money."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from app.errors import NotFound, ValidationFailed
from app.services.projects.progress import public_id

DEFAULT_LIMIT = 50
MAX_LIMIT = 300

__all__ = ["public_id", "parse_id", "iso", "parse_datetime", "cents_of", "dollars", "Page"]


def parse_id(value: str | int | None, *, what: str = "object") -> int:
    """A wire id ("0000000012" or "12") as an integer; anything else is not found."""
    text = str(value if value is not None else "").strip()
    if not text.isdigit():
        raise NotFound(f"No such {what}.")
    return int(text)


def parse_filter_id(value: str | None, *, name: str) -> int | None:
    """An id used in a filter (``id_gt=…``); a non-number is a validation error."""
    if value is None or value == "":
        return None
    if not str(value).strip().isdigit():
        raise ValidationFailed("Invalid filter.", errors={name: "Expected an id."})
    return int(value)


def iso(value: datetime | None) -> str | None:
    """Toloka's date form: naive UTC with milliseconds."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def parse_datetime(value: str | None, *, field: str) -> datetime | None:
    """A client date (naive = UTC; ``Z`` and offsets accepted)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed("Invalid date.", errors={field: "Use ISO 8601."}) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def cents_of(value: Any, *, field: str) -> int:
    """Dollars (a JSON number) as integer cents; more than two decimals is refused."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed("Invalid amount.", errors={field: "Expected a number."}) from None
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationFailed(
            "Amounts have at most two decimals (minimum 0.01).",
            errors={field: "At most two decimals."},
        )
    return int(amount * 100)


def dollars(cents: int) -> float:
    """Cents as a JSON number of dollars."""
    return round(cents / 100, 2)


class Page(BaseModel):
    """Toloka's search result: ``items`` and whether more follow."""

    items: list[dict[str, Any]]
    has_more: bool


def clamp_limit(limit: int | None) -> int:
    """The page size within 1..300 (50 by default)."""
    return max(1, min(limit or DEFAULT_LIMIT, MAX_LIMIT))
