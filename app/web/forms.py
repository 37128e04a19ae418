"""Small helpers for reading HTML form values with clear errors."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from app.errors import ValidationFailed


def parse_money_cents(raw: str | None, *, field: str, minimum_cents: int = 0) -> int:
    """Parse "1.25" / "1,25" / "$1.25" into cents; two decimals at most."""
    text = (raw or "").strip().replace("$", "").replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationFailed(
            "Enter an amount like 1.50.", errors={field: "Not a number."}
        ) from None
    if value != value.quantize(Decimal("0.01")):
        raise ValidationFailed("Use at most two decimals.", errors={field: "Two decimals at most."})
    cents = int(value * 100)
    if cents < minimum_cents:
        raise ValidationFailed(
            f"The amount must be at least {minimum_cents / 100:.2f}.",
            errors={field: f"At least {minimum_cents / 100:.2f}."},
        )
    return cents


def parse_int(
    raw: str | None,
    *,
    field: str,
    minimum: int | None = None,
    maximum: int | None = None,
    default: int | None = None,
) -> int:
    """Parse an integer field within bounds."""
    text = (raw or "").strip()
    if not text and default is not None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValidationFailed(
            "Enter a whole number.", errors={field: "Not a whole number."}
        ) from None
    if minimum is not None and value < minimum:
        raise ValidationFailed(
            f"{field} must be at least {minimum}.", errors={field: f"At least {minimum}."}
        )
    if maximum is not None and value > maximum:
        raise ValidationFailed(
            f"{field} must be at most {maximum}.", errors={field: f"At most {maximum}."}
        )
    return value
