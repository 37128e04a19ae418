"""What the rules engine reacts to besides submits and skips: a ban was created, suites
were reviewed. Bans and reviews announce them here; the engine subscribes when it is
imported (``app.services.quality`` imports it), so neither module imports the engine."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from app.db.models import Pool

Handler = Callable[..., object]
_handlers: dict[str, list[Handler]] = {"banned": [], "reviewed": []}


def subscribe(event: str, handler: Handler) -> None:
    """Call ``handler(session, pool=..., labeler_id=...)`` on every ``event``."""
    if handler not in _handlers[event]:
        _handlers[event].append(handler)


def _announce(event: str, session: Session, *, pool: Pool, labeler_id: int) -> None:
    for handler in _handlers[event]:
        handler(session, pool=pool, labeler_id=labeler_id)


def labeler_banned(session: Session, *, pool: Pool, labeler_id: int) -> None:
    """A ban now keeps the labeler out of ``pool`` (flush only)."""
    _announce("banned", session, pool=pool, labeler_id=labeler_id)


def suites_reviewed(session: Session, *, pool: Pool, labeler_id: int) -> None:
    """Some of the labeler's suites in ``pool`` were accepted or rejected (flush only)."""
    _announce("reviewed", session, pool=pool, labeler_id=labeler_id)
