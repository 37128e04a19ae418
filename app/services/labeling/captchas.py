"""Captchas between suites: a pool with ``captcha_frequency`` puts one to a labeler after
every N tasks (``CAPTCHA_EVERY``); taking the next suite waits until it is answered.

The text is drawn here, drawn as an image by the ``captcha`` package, and kept only as a
keyed hash: neither the page nor any API ever carries the answer. An answer, right or
wrong, is final; the pool's ``CAPTCHA`` rules then run on the labeler's success rate.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from captcha.image import ImageCaptcha
from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import Assignment, AssignmentTask, CaptchaChallenge, Pool, PoolStatus, User
from app.db.types import utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.services.accounts.users import TokenLabeler
from app.services.quality import apply_rules_after_captcha
from app.services.quality.collectors import DONE_STATUSES
from app.services.quality.rules import CAPTCHA_EVERY
from app.settings import get_settings

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: nobody fails on the font
LENGTH = 5
IMAGE_SIZE = (240, 90)

Labeler = User | TokenLabeler


class CaptchaRequired(Conflict):
    """The labeler must answer a captcha before the next suite of this pool."""

    code = "CAPTCHA_REQUIRED"


@dataclass
class CaptchaResult:
    """What answering told the labeler: right or wrong (never the expected text)."""

    captcha_id: int
    pool_id: int
    solved: bool


def new_text() -> str:
    """A fresh captcha text."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(answer: str) -> str:
    """What is compared: upper case, no spaces."""
    return "".join(answer.split()).upper()


def _digest(salt: str, text: str) -> str:
    key = get_settings().resolved_secret_key.encode()
    return hmac.new(key, f"captcha:{salt}:{normalise(text)}".encode(), hashlib.sha256).hexdigest()


def _last(session: Session, *, pool_id: int, labeler_id: int) -> CaptchaChallenge | None:
    return session.exec(
        select(CaptchaChallenge)
        .where(CaptchaChallenge.pool_id == pool_id, CaptchaChallenge.labeler_id == labeler_id)
        .order_by(CaptchaChallenge.id.desc())
        .limit(1)
    ).first()


def captcha_due(session: Session, *, pool_id: int, frequency: str | None, labeler_id: int) -> bool:
    """Whether a captcha waits for the labeler: one is open, or N tasks were submitted
    since the last one was answered (two indexed reads; none for a pool without captchas)."""
    every = CAPTCHA_EVERY.get(frequency or "")
    if not every:
        return False
    last = _last(session, pool_id=pool_id, labeler_id=labeler_id)
    if last is not None and last.solved is None:
        return True
    query = (
        select(func.count(AssignmentTask.task_id))
        .join(Assignment, Assignment.id == AssignmentTask.assignment_id)
        .where(
            Assignment.pool_id == pool_id,
            Assignment.labeler_id == labeler_id,
            Assignment.status.in_(DONE_STATUSES),
        )
    )
    if last is not None:
        query = query.where(Assignment.submitted_at > last.answered_at)
    return int(session.exec(query).one()) >= every


def require_captcha(session: Session, *, pool_id: int, frequency: str | None, labeler_id: int):
    """Raise ``CaptchaRequired`` when a captcha is due (the take path calls this)."""
    if captcha_due(session, pool_id=pool_id, frequency=frequency, labeler_id=labeler_id):
        raise CaptchaRequired(
            "Answer a short captcha before your next suite.",
            payload={"pool_id": pool_id},
        )


def _open_pool(session: Session, pool_id: int) -> Pool:
    pool = session.get(Pool, pool_id)
    if pool is None or pool.status != PoolStatus.OPEN:
        raise NotFound("This pool does not exist or is no longer open.")
    return pool


def open_captcha(session: Session, *, labeler: Labeler, pool_id: int) -> CaptchaChallenge:
    """The labeler's waiting captcha in the pool, drawn now if one is due (commits).

    A waiting captcha is shown again as it was: reloading never draws an easier one."""
    pool = _open_pool(session, pool_id)
    last = _last(session, pool_id=pool.id, labeler_id=labeler.id)
    if last is not None and last.solved is None:
        return last
    if not captcha_due(
        session, pool_id=pool.id, frequency=pool.captcha_frequency, labeler_id=labeler.id
    ):
        raise Conflict("No captcha is waiting for you in this pool.")
    session.rollback()  # draw the image outside any write transaction
    text = new_text()
    image = ImageCaptcha(width=IMAGE_SIZE[0], height=IMAGE_SIZE[1]).generate(text).getvalue()
    salt = secrets.token_hex(8)
    row = CaptchaChallenge(
        pool_id=pool.id,
        labeler_id=labeler.id,
        salt=salt,
        answer_hash=_digest(salt, text),
        image=image,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def _own(session: Session, *, labeler: Labeler, captcha_id: int) -> CaptchaChallenge:
    row = session.get(CaptchaChallenge, captcha_id)
    if row is None or row.labeler_id != labeler.id:
        raise NotFound("No such captcha.")
    return row


def captcha_image(session: Session, *, labeler: Labeler, captcha_id: int) -> bytes:
    """The PNG of one of the labeler's waiting captchas (gone once answered)."""
    row = _own(session, labeler=labeler, captcha_id=captcha_id)
    if row.solved is not None or row.image is None:
        raise NotFound("This captcha was answered already.")
    return row.image


def answer_captcha(
    session: Session, *, labeler: Labeler, captcha_id: int, answer: str
) -> CaptchaResult:
    """Check the answer (once: it is final), then run the pool's captcha rules (commits)."""
    if not normalise(answer or ""):
        raise ValidationFailed(
            "Type the characters you see in the picture.", errors={"answer": "Required."}
        )
    if len(answer) > 100:
        raise ValidationFailed("That answer is too long.", errors={"answer": "Too long."})
    row = _own(session, labeler=labeler, captcha_id=captcha_id)
    if row.solved is not None:
        raise Conflict("This captcha was answered already.")
    row.solved = hmac.compare_digest(row.answer_hash, _digest(row.salt, answer))
    row.answered_at = utcnow()
    row.image = None
    session.add(row)
    session.flush()
    pool = session.get(Pool, row.pool_id)
    apply_rules_after_captcha(session, pool=pool, labeler_id=labeler.id)
    session.commit()
    return CaptchaResult(captcha_id=row.id, pool_id=row.pool_id, solved=bool(row.solved))
