"""Checks for text that users send: no NUL bytes or other control characters.

PostgreSQL cannot store NUL in text at all (a 500 before these checks), and control
characters in names break TSV exports and pages. Names are one line, so every control
character is refused there; free text (instructions, task values) may keep tab and newlines.
"""

from __future__ import annotations

import re
from typing import Any

from app.errors import ValidationFailed

# C0 controls and DEL; free text keeps tab, line feed and carriage return
_NAME_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_problem(value: str, *, name: bool = False) -> str | None:
    """What is wrong with ``value`` (a short message), or None when it is clean."""
    found = (_NAME_CONTROLS if name else _TEXT_CONTROLS).search(value)
    if found is None:
        return None
    char = found.group()
    what = "a NUL byte" if char == "\x00" else f"a control character (U+{ord(char):04X})"
    return f"Contains {what}; remove it."


def check_text(value: str | None, *, field: str, name: bool = False) -> str | None:
    """``value`` unchanged when clean; ``ValidationFailed`` naming ``field`` otherwise.

    Args:
        value: The text (None passes).
        field: The form or payload field to name in the error.
        name: A one-line name: tabs and newlines are refused too.
    """
    if value is None:
        return None
    problem = control_problem(str(value), name=name)
    if problem:
        raise ValidationFailed(f"{field}: {problem}", errors={field: problem})
    return value


def check_values(value: Any, *, field: str) -> Any:
    """Every string (keys included) inside JSON-like ``value`` checked like free text."""
    if isinstance(value, str):
        check_text(value, field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key), field=field)
            check_values(item, field=f"{field}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_values(item, field=f"{field}.{index}")
    return value
