"""The demo's simulated crowd: labelers of different skill taking suites from a pool.

Each takes a suite through ``assign_next_suite`` and submits it through
``submit_assignment``. Time is simulated: the suite is dated back by the seconds the
labeler "took", so the fast-responses rule sees realistic durations.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, func, select

from app.db.models import Answer, Assignment, Ban, Pool, Role, Task, User
from app.errors import Conflict, LabelerBanned, NotFound
from app.services.accounts import users
from app.services.demo.data import CLASSES
from app.services.labeling.assignments import NoSuiteAvailable, assign_next_suite, submit_assignment

Progress = Callable[[float, str], None]
DOMAIN = "demo.crowdlab.test"

# (kind, accuracy, seconds per suite): careful people, a guesser, one who clicks through.
PROFILES = {
    "careful": (0.97, (25.0, 80.0)),
    "sloppy": (0.75, (18.0, 40.0)),
    "random": (0.0, (20.0, 45.0)),
    "fast": (0.85, (2.0, 6.0)),  # right often enough; too fast to be careful
}
NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia"]


@dataclass
class DemoLabeler:
    email: str
    name: str
    kind: str
    suites: int = 0
    banned: str | None = None


def create_labelers(session: Session, *, count: int, password: str) -> list[DemoLabeler]:
    """Labeler accounts: one too fast, one random, the rest careful (one sloppy)."""
    kinds = ["fast", "random"] + ["careful"] * (count - 2)
    if count >= 6:
        kinds[-1] = "sloppy"
    people = []
    for i, kind in enumerate(kinds):
        name = f"{NAMES[i % len(NAMES)]} ({kind})"
        email = f"labeler{i + 1}@{DOMAIN}"
        users.create_user(session, email=email, password=password, role=Role.LABELER, name=name)
        people.append(DemoLabeler(email=email, name=name, kind=kind))
    return people


def _answer(kind: str, truth: str | None, rng: random.Random) -> str:
    accuracy = PROFILES[kind][0]
    if truth is not None and rng.random() < accuracy:
        return truth
    return rng.choice([c for c in CLASSES if c != truth] or list(CLASSES))


def _control_answer(session: Session, task_id: int) -> str | None:
    task = session.get(Task, task_id)
    return task.known_answer if task is not None else None


def simulate_labeling(
    session: Session,
    *,
    pool: Pool,
    people: list[DemoLabeler],
    truth: dict[int, str],
    rng: random.Random,
    report: Progress,
) -> None:
    """Round-robin over the labelers; each takes and submits one suite per turn."""
    needed = len(truth) * pool.overlap
    shown = 0.0
    active = list(people)
    by_email = {
        p.email: session.exec(select(User).where(User.email == p.email)).one() for p in people
    }
    while active:
        for person in list(active):
            labeler = by_email[person.email]
            try:
                view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
            except LabelerBanned as exc:
                person.banned = person.banned or exc.message
                active.remove(person)
                continue
            except (NoSuiteAvailable, Conflict, NotFound):  # nothing left, or pool closed
                active.remove(person)
                continue
            answers = {}
            for item in view.tasks:
                known = truth.get(item.task_id) or _control_answer(session, item.task_id)
                answers[item.task_id] = _answer(person.kind, known, rng)
            low, high = PROFILES[person.kind][1]
            assignment = session.get(Assignment, view.assignment_id)
            assignment.created_at -= timedelta(seconds=rng.uniform(low, high))
            session.add(assignment)
            session.commit()
            submit_assignment(
                session, labeler=labeler, assignment_id=view.assignment_id, answers=answers
            )
            person.suites += 1
            done = session.exec(
                select(func.count())
                .select_from(Answer)
                .where(Answer.pool_id == pool.id, Answer.excluded.is_(False))
                .join(Task, Task.id == Answer.task_id)
                .where(Task.kind == "general")
            ).one()
            shown = max(shown, min(1.0, done / max(needed, 1)))
            report(0.1 + 0.45 * shown, f"{person.name}: suite submitted")
    for person in people:
        if person.banned is None:
            ban = session.exec(
                select(Ban).join(User, User.id == Ban.labeler_id).where(User.email == person.email)
            ).first()
            if ban is not None:
                person.banned = ban.private_comment
