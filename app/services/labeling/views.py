"""What a labeler sees of a suite: positions, images, question, options; never task kinds,
known answers, hints or task ids (the edges render ``SuiteView`` and nothing else)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import text
from sqlmodel import Session, select

from app.db.models import AnswerOption, Assignment, Pool, TaskKind
from app.db.types import utcnow
from app.services import answer_sets
from app.services.labeling import sql
from app.services.labeling.images import suite_image_path
from app.services.media.store import EXTENSIONS

if TYPE_CHECKING:
    from app.services.labeling.available import PoolTerms


@dataclass
class SuiteTask:
    """One task of a suite. ``task_id`` is for services only; edges use ``position``."""

    position: int
    image_url: str
    checkable: bool
    task_id: int = field(repr=False)


@dataclass
class SuiteView:
    assignment_id: int
    pool_id: int
    status: str
    expires_at: datetime
    reward_cents: int
    project_name: str
    question: str
    instructions: str
    options: list[OptionView]
    tasks: list[SuiteTask]
    draft: dict[int, str] = field(default_factory=dict)  # answers chosen so far, by position
    answer_type: str = answer_sets.SINGLE  # "multiple": checkboxes, each answer a set
    allow_none: bool = False  # several answers: "none of these" is offered

    @property
    def multiple(self) -> bool:
        return self.answer_type == answer_sets.MULTIPLE

    @property
    def none_hotkey(self) -> str | None:
        """The key of "none of these": the first of n, x, 0 no option uses."""
        used = {o.hotkey for o in self.options}
        return next((key for key in "nx0" if key not in used), None)

    @property
    def seconds_left(self) -> int:
        return max(0, math.floor((self.expires_at - utcnow()).total_seconds()))

    def public(self) -> dict:
        """The JSON a labeler receives (no ids that reveal anything but the suite itself)."""
        return {
            "id": self.assignment_id,
            "pool_id": self.pool_id,
            "status": self.status,
            "expires_at": self.expires_at.isoformat(),
            "seconds_left": self.seconds_left,
            "reward": self.reward_cents / 100,
            "project": self.project_name,
            "question": self.question,
            "instructions": self.instructions,
            "answer_type": self.answer_type,
            "allow_none": self.allow_none,
            "options": [
                {"label": o.label, "value": o.value, "hotkey": o.hotkey} for o in self.options
            ],
            "tasks": [{"position": t.position, "image": t.image_url} for t in self.tasks],
        }


def image_url(image: str, sha256: str | None, content_type: str | None) -> str:
    """A task's image as its requester addresses it (``/media/<sha>`` or the URL given).

    Labelers never see this: ``build_view`` gives every task the suite's opaque address
    (``suite_images.suite_image_path``) whatever its source.
    """
    if sha256:
        return f"/media/{sha256}.{EXTENSIONS.get(content_type or '', 'bin')}"
    return image


class SuiteHead(NamedTuple):
    """What a suite view needs of the assignment row (a suite just written has no ORM
    object)."""

    id: int
    status: str
    expires_at: datetime
    reward_cents: int


class OptionView(NamedTuple):
    """An answer option as a labeler sees it."""

    label: str
    value: str
    hotkey: str | None


def list_options(session: Session, *, project_id: int) -> list[AnswerOption]:
    """A project's answer options in display order."""
    return list(
        session.exec(
            select(AnswerOption)
            .where(AnswerOption.project_id == project_id)
            .order_by(AnswerOption.position, AnswerOption.id)
        )
    )


def load_suite_tasks(session: Session, *, assignment_id: int) -> list[tuple]:
    """(position, task id, kind, known answer, hint, image URL) per task, in order."""
    rows = sql.rows(session.connection(), sql.SUITE_TASKS, {"assignment_id": assignment_id})
    return suite_tasks(rows)


def suite_tasks(rows) -> list[tuple]:
    """``load_suite_tasks``'s tuples from rows of (position, task id, kind, known answer,
    hint, image, sha256, content type)."""
    return [
        (pos, tid, kind, known, hint, image_url(image, sha, ctype))
        for pos, tid, kind, known, hint, image, sha, ctype in rows
    ]


class ProjectView(NamedTuple):
    """What a labeler sees of the project around a suite."""

    name: str
    question: str
    instructions: str
    answer_type: str
    allow_none: bool
    options: list[OptionView]


def project_view(conn, *, project_id: int) -> ProjectView:
    """The project's name, question, instructions, answer type and options, in one query."""
    rows = sql.rows(conn, sql.PROJECT_VIEW, {"project_id": project_id})
    if not rows:
        return ProjectView("", "", "", answer_sets.SINGLE, False, [])
    options = [OptionView(*row[5:]) for row in rows if row[6] is not None]
    return ProjectView(*rows[0][:5], options)


def build_view(
    session: Session,
    *,
    assignment: Assignment | SuiteHead,
    pool: Pool | PoolTerms,
    tasks: list[tuple] | None = None,
    project: ProjectView | None = None,
) -> SuiteView:
    """The labeler's view of a suite: a query for the project and one for the tasks, less
    what the caller has (``tasks``, the rows ``load_suite_tasks`` would return; ``project``,
    what ``project_view`` would)."""
    if project is None:
        project = project_view(session.connection(), project_id=pool.project_id)
    name, question, instructions, answer_type, allow_none, options = project
    suite_tasks = [
        SuiteTask(
            position=pos,
            # every task's image behind the suite's opaque address, whatever its source
            image_url=suite_image_path(assignment.id, pos),
            checkable=kind == TaskKind.TRAINING and bool(hint),
            task_id=tid,
        )
        for pos, tid, kind, _known, hint, _url in (
            tasks if tasks is not None else load_suite_tasks(session, assignment_id=assignment.id)
        )
    ]
    return SuiteView(
        assignment_id=assignment.id,
        pool_id=pool.id,
        status=assignment.status,
        expires_at=assignment.expires_at,
        reward_cents=assignment.reward_cents,
        project_name=name,
        question=question,
        instructions=instructions,
        options=options,
        tasks=suite_tasks,
        draft={**_preselected(session, assignment, pool), **_draft_of(assignment, options)},
        answer_type=answer_type or answer_sets.SINGLE,
        allow_none=bool(allow_none),
    )


# the pool model's answers of a suite's general tasks, when its project pre-selects them
_PRESELECTED = text(
    "SELECT at.position, t.model_answer FROM assignment_task at "
    "JOIN task t ON t.id = at.task_id JOIN pool p ON p.id = t.pool_id "
    "JOIN project pr ON pr.id = p.project_id "
    "WHERE at.assignment_id = :assignment_id AND pr.preselect_model_answer "
    "AND t.kind = 'general' AND t.model_answer IS NOT NULL"
)


def _preselected(session: Session, assignment, pool) -> dict[int, str]:
    """The model's guesses, pre-selected, only where the pool has a model and the project
    asked for it (labelers otherwise never see a guess)."""
    if getattr(pool, "model_id", None) is None or assignment.status != "active":
        return {}
    found = sql.rows(session.connection(), _PRESELECTED, {"assignment_id": assignment.id})
    return {int(position): str(answer) for position, answer in found}


def _draft_of(assignment, options: list[OptionView]) -> dict[int, str]:
    """The saved draft of an active suite, by position, with values still among the options."""
    draft = getattr(assignment, "draft", None) or {}
    if assignment.status != "active":
        return {}
    values = [option.value for option in options]
    kept = {}
    for pos, value in draft.items():
        if not str(pos).isdigit():
            continue
        chosen = answer_sets.decode(str(value))
        if chosen is not None:  # a set (several answers): the values still among the options
            kept[int(pos)] = answer_sets.encode(chosen, values)
        elif str(value) in values:
            kept[int(pos)] = str(value)
    return kept
