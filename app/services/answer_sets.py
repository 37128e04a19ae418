"""Answers of "several answers" projects (Toloka's checkbox outputs): a set of option values.

One text stands for a set everywhere an answer is stored or compared (answers, control
answers, aggregated labels, TSV): the JSON list of the chosen values in the project's option
order, compact (``["cat","dog"]``; ``[]`` is "none of these"). One set has one text, so an
exact match is string equality and every rule that compares answers (majority vote, control
accuracy, fast responses) works on sets unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

SINGLE = "single"  # one answer: a radio group, the answer is one option's value
MULTIPLE = "multiple"  # several answers: checkboxes, the answer is a set of values
ANSWER_TYPES = {SINGLE: "One answer", MULTIPLE: "Several answers"}
# an answer, a known answer or a label is at most this long (the columns' width)
MAX_ANSWER_CHARS = 200


class BadAnswer(ValueError):
    """An answer that is not a set of the project's option values (the message says why)."""


def encode(values: Iterable[str], order: Sequence[str]) -> str:
    """The canonical text of a set: its values in option order, as a compact JSON list."""
    chosen = set(values)
    return json.dumps([v for v in order if v in chosen], ensure_ascii=False, separators=(",", ":"))


def decode(raw: str | None) -> list[str] | None:
    """The values of a set's text (a JSON list of strings), or None when ``raw`` is not one."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text.startswith("["):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
        return None
    return parsed


def parse(raw) -> list[str]:
    """What a client sent as a set: a list, a JSON list, or one value (``""`` = empty)."""
    if raw is None:
        return []
    if isinstance(raw, list | tuple | set | frozenset):
        return [str(v).strip() for v in raw if str(v).strip()]
    text = str(raw).strip()
    if not text:
        return []
    values = decode(text)
    if values is None:
        if text.startswith("["):
            raise BadAnswer("is not a JSON list of option values")
        return [text]
    return [v.strip() for v in values if v.strip()]


def normalize(raw, values: Sequence[str], *, allow_none: bool) -> str:
    """The canonical text of the set ``raw`` names; ``BadAnswer`` for unknown values, or an
    empty set where "none of these" is not offered."""
    chosen = parse(raw)
    unknown = [v for v in dict.fromkeys(chosen) if v not in values]
    if unknown:
        raise BadAnswer(
            f"“{', '.join(unknown)}” {'is' if len(unknown) == 1 else 'are'} not among the "
            f"options (use {', '.join(values)})"
        )
    if not chosen and not allow_none:
        raise BadAnswer("choose at least one option")
    return encode(chosen, values)


def check_fits(values: Sequence[str]) -> str | None:
    """A problem when the set of every option would not fit in an answer, else None."""
    if len(encode(values, values)) > MAX_ANSWER_CHARS:
        return (
            f"With several answers, all option values together (as a JSON list) must fit in "
            f"{MAX_ANSWER_CHARS} characters; use shorter values (labels may stay long)."
        )
    return None


def output(stored: str | None):
    """A stored answer as Toloka's ``output_values.result``: a set's list of values, any
    other answer as it is (option values never start with "[")."""
    values = decode(stored)
    return stored if values is None else values


def hits(raw: str | None, option: str) -> bool | None:
    """Whether the set ``raw`` holds ``option`` (None when ``raw`` is not a set)."""
    values = decode(raw)
    return None if values is None else option in values


def per_option(rows: Iterable[tuple[str | None, str | None]], options: Sequence[str]) -> dict:
    """Per option, how often a given set agrees with the known one on that option:
    ``{option: (right, total)}`` from ``(given, known)`` pairs of set texts."""
    tally = {option: [0, 0] for option in options}
    for given, known in rows:
        got, want = decode(given), decode(known)
        if got is None or want is None:
            continue
        for option in options:
            tally[option][1] += 1
            tally[option][0] += (option in got) == (option in want)
    return {option: (right, total) for option, (right, total) in tally.items()}
