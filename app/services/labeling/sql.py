"""Prebuilt statements of the labeling hot path (take a suite, submit it; paying it is in
``app.services.money.sql``).

Built once at import: building a SQLAlchemy statement costs more Python than running it,
and these run on every request. Each has a PostgreSQL variant (row locks, ``SKIP LOCKED``)
and a SQLite one (writers are serialised by ``BEGIN IMMEDIATE``); ``pick(pg)`` chooses.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Integer,
    String,
    TextClause,
    bindparam,
    column,
    insert,
    text,
    update,
)
from sqlmodel import select

from app.db.models import (
    Answer,
    Assignment,
    AssignmentTask,
    Task,
)
from app.db.raw import pick, rows  # noqa: F401  (the hot path's callers use them from here)
from app.db.types import UTCDateTime
from app.services.quality.sql import BAN_ID

# --- taking a suite ----------------------------------------------------------------------

# PostgreSQL: the labeler's row is locked while a suite is chosen (one active suite per
# pool, even on a double click). A statement of its own: a statement that waited for the
# lock still reads from before the other request's commit, so the suites are read after.
LOCK_LABELER = text("SELECT id FROM user_account WHERE id = :labeler_id FOR NO KEY UPDATE")

# What taking a suite needs, in one read: the pool's terms (a narrow row, not the ORM's
# whole pool), the ban that keeps the labeler out (if any), the labeler's active suites
# there, and the project's name, question, instructions and options (one row per active
# suite and option: almost always one suite or none).
POOL_TERMS = (
    "id", "project_id", "owner_id", "status", "overlap", "reward_cents", "general_per_suite",
    "control_per_suite", "training_per_suite", "time_limit_seconds", "keep_task_order",
    "adult_content", "filter_languages", "min_rating", "skill_filters", "training_pool_id",
    "training_level_required", "extra", "fixed_suites", "captcha_frequency", "max_overlap",
    "model_id",
)  # fmt: skip
_TERM_TYPES = {"keep_task_order": Boolean, "adult_content": Boolean, "filter_languages": JSON,
               "skill_filters": JSON, "extra": JSON, "fixed_suites": Boolean}  # fmt: skip
_BAN_IN_POOL = BAN_ID.format(requester="p.owner_id", project="p.project_id", pool="p.id")
TAKE_CONTEXT = (
    text(
        f"SELECT {', '.join('p.' + name for name in POOL_TERMS)}, ({_BAN_IN_POOL}) AS ban_id, "
        "a.id AS active_id, a.expires_at AS active_expires_at, "
        "pr.name, pr.question, pr.instructions, pr.answer_type, pr.allow_none, "
        "o.label, o.value, o.hotkey FROM pool p "
        "JOIN project pr ON pr.id = p.project_id "
        "LEFT JOIN answer_option o ON o.project_id = p.project_id "
        "LEFT JOIN assignment a ON a.pool_id = p.id AND a.labeler_id = :labeler_id "
        "AND a.status = 'active' WHERE p.id = :pool_id ORDER BY a.id, o.position, o.id"
    )
    .bindparams(bindparam("now", type_=UTCDateTime))
    .columns(
        *(column(name, _TERM_TYPES.get(name)) for name in POOL_TERMS),
        column("ban_id", Integer), column("active_id", Integer),
        column("active_expires_at", UTCDateTime), column("name", String),
        column("question", String), column("instructions", String),
        column("answer_type", String), column("allow_none", Boolean), column("label", String),
        column("value", String), column("hotkey", String),
    )
)  # fmt: skip

# what a suite view needs of a picked task: (id, position, kind, hint, image, sha256, type)
_PICKED = "t.id, t.position, t.kind, t.hint, t.image, m.sha256, m.content_type"


def _had(task: str, barrier: str) -> str:
    """How many times the labeler had the task in a suite: one probe of
    ix_assignment_task_task_labeler, whatever the labeler's history. ``barrier`` (PostgreSQL's
    ``OFFSET 0``) keeps the probe a per-row subquery (never a join over the whole history)."""
    return (
        "(SELECT count(*) FROM (SELECT 1 FROM assignment_task h "
        f"WHERE h.task_id = {task} AND h.labeler_id = :labeler_id{barrier}) hx)"
    )


def _general(order: str, barrier: str, *, probe: bool) -> str:
    """General tasks with a free slot that the labeler never had. ``probe``: checked task by
    task (for a scan that stops after :n rows, in index order); otherwise against the
    labeler's history in the pool read once and hashed (a scan that sorts every candidate:
    a probe per candidate would cost more than reading the history)."""
    if probe:
        never_had = (
            "NOT EXISTS (SELECT 1 FROM assignment_task h "
            f"WHERE h.task_id = t.id AND h.labeler_id = :labeler_id{barrier})"
        )
    else:
        never_had = (
            "t.id NOT IN (SELECT at.task_id FROM assignment_task at JOIN assignment a "
            "ON a.id = at.assignment_id WHERE a.labeler_id = :labeler_id AND a.pool_id = :pool_id)"
        )
    return f"""
SELECT {_PICKED} FROM task t LEFT JOIN media_file m ON m.id = t.media_id
WHERE t.pool_id = :pool_id AND t.kind = 'general'
  AND t.taken_count < COALESCE(t.overlap, :overlap)
  AND {never_had}
{order}"""


_GENERAL_ORDER = {  # keep_task_order → (SQLite, PostgreSQL)
    True: ("ORDER BY t.position, t.id LIMIT :n",
           "ORDER BY t.position, t.id LIMIT :n FOR NO KEY UPDATE OF t SKIP LOCKED"),
    False: ("ORDER BY t.taken_count, t.id LIMIT :n",
            "ORDER BY t.taken_count LIMIT :n FOR NO KEY UPDATE OF t SKIP LOCKED"),
    # dynamic overlap (uncertainty sampling): the least certain tasks first, a task
    # nobody has answered and no model has guessed counting as wholly uncertain
    "uncertain": (
        "ORDER BY COALESCE(t.confidence, 0), t.taken_count, t.id LIMIT :n",
        "ORDER BY COALESCE(t.confidence, 0), t.taken_count, t.id LIMIT :n "
        "FOR NO KEY UPDATE OF t SKIP LOCKED",
    ),
}  # fmt: skip


def _seen_least(kind: str, limit: str, barrier: str) -> str:
    """Control / training tasks: those the labeler has had least often, at random, from a
    window of them: the first :window tasks of the kind in id order from a random point
    of their id range on (``:r`` in [0, 1)), going round to the start. The window keeps the
    cost flat in the number of such tasks and in the labeler's history; with :window at
    least the pool's count of the kind it is every one of them. ``:reuse`` false: only
    tasks the labeler never had."""
    # control and training tasks hold no slots: their taken_count stays 0, so this reads
    # ix_task_pool_kind_taken in id order
    where = f"pool_id = :pool_id AND kind = '{kind}' AND taken_count = 0"
    pivot = (
        f"(SELECT lo + CAST(:r * (hi - lo + 1) AS INTEGER) FROM (SELECT min(id) AS lo, "
        f"max(id) AS hi FROM task WHERE {where}) bounds)"
    )
    return f"""
SELECT {_PICKED} FROM (
  SELECT id FROM (
    SELECT w.id, {_had("w.id", barrier)} AS had FROM (
      SELECT id FROM (
        SELECT id, 0 AS part FROM (SELECT id FROM task WHERE {where} AND id >= {pivot}
                                   ORDER BY id LIMIT :window) after_pivot
        UNION ALL
        SELECT id, 1 AS part FROM (SELECT id FROM task WHERE {where} AND id < {pivot}
                                   ORDER BY id LIMIT :window) before_pivot
      ) around ORDER BY part, id LIMIT :window
    ) w
  ) x WHERE x.had = 0 OR :reuse ORDER BY x.had, random() LIMIT {limit}
) chosen JOIN task t ON t.id = chosen.id LEFT JOIN media_file m ON m.id = t.media_id"""


_PICK_SUITE: dict[tuple, TextClause] = {}


def pick_suite(order, *, control: bool, training: bool, pg: bool) -> TextClause:
    """A suite's tasks in one statement: :n general tasks with a free slot that the labeler
    never had (PostgreSQL walks ix_task_pool_kind_taken in order, fewest taken first, and
    skips rows other labelers are taking right now instead of waiting for them), and when
    asked :n_control
    control and :n_training training tasks (``_seen_least``). ``order``: keep_task_order,
    or "uncertain". Built once per variant (a part not asked for is not planned)."""
    key = (order, control, training, pg)
    statement = _PICK_SUITE.get(key)
    if statement is None:
        barrier = " OFFSET 0" if pg else ""
        # only the fewest-taken-first order walks an index and stops after :n rows
        probe = order is False
        parts = {"g": _general(pick(_GENERAL_ORDER[order], pg), barrier, probe=probe)}
        if control:
            parts["c"] = _seen_least("control", ":n_control", barrier)
        if training:
            parts["tr"] = _seen_least("training", ":n_training", barrier)
        statement = text(
            "WITH "
            + ", ".join(f"{name} AS ({body})" for name, body in parts.items())
            + " "
            + " UNION ALL ".join(f"SELECT * FROM {name}" for name in parts)
        )
        if control or training:
            statement = statement.bindparams(
                bindparam("reuse", type_=Boolean), bindparam("r", type_=Float)
            )
        _PICK_SUITE[key] = statement
    return statement


SEEN_WINDOW = 32
"""Control / training tasks considered for a suite beside the general ones (see
``_seen_least``): a labeler with general tasks to do meets a fresh random window of them at
each suite; a suite of such tasks alone considers all of them."""


# Pools of requester-composed task suites (``fixed_suites``): the first suite, in creation
# order, of which every general task still has a free slot and no task was the labeler's
# before. PostgreSQL locks the suite's row (first skipping one another request is handing
# out, then waiting for it); ``SUITE_STILL_FREE`` re-reads its tasks' counts after the lock.
_FREE_SUITE = """
SELECT s.id FROM task_suite s
WHERE s.pool_id = :pool_id
  AND s.id > :after
  AND NOT EXISTS (SELECT 1 FROM task t WHERE t.suite_id = s.id AND t.kind = 'general'
                  AND t.taken_count >= COALESCE(t.overlap, :overlap))
  AND NOT EXISTS (SELECT 1 FROM task t JOIN assignment_task h ON h.task_id = t.id
                  WHERE t.suite_id = s.id AND h.labeler_id = :labeler_id)
ORDER BY s.id LIMIT 1
"""
# (SQLite, PostgreSQL skipping suites being handed out, PostgreSQL waiting for them)
PICK_FIXED_SUITE = (
    text(_FREE_SUITE),
    text(_FREE_SUITE + " FOR NO KEY UPDATE OF s SKIP LOCKED"),
    text(_FREE_SUITE + " FOR NO KEY UPDATE OF s"),
)
SUITE_STILL_FREE = text(
    "SELECT COUNT(*) FROM task t WHERE t.suite_id = :suite_id AND t.kind = 'general' "
    "AND t.taken_count >= COALESCE(t.overlap, :overlap)"
)
COMPOSED_SUITE_TASKS = text(
    f"SELECT {_PICKED} FROM task t LEFT JOIN media_file m ON m.id = t.media_id "
    "WHERE t.suite_id = :suite_id ORDER BY t.position, t.id"
)

INSERT_ASSIGNMENT = insert(Assignment.__table__).returning(Assignment.__table__.c.id)
INSERT_SUITE_TASKS = insert(AssignmentTask.__table__)

# PostgreSQL: the suite, its tasks and the taken counters in one statement (the picked
# general rows are locked already, so the counter update waits for nobody).
CREATE_SUITE_PG = text(
    """
WITH a AS (
  INSERT INTO assignment (pool_id, labeler_id, status, reward_cents, created_at, expires_at)
  VALUES (:pool_id, :labeler_id, 'active', :reward_cents, :created_at, :expires_at)
  RETURNING id
), suite AS (
  INSERT INTO assignment_task (assignment_id, task_id, position, labeler_id)
  SELECT a.id, u.task_id, u.position, :labeler_id FROM a,
    unnest(CAST(:task_ids AS integer[]), CAST(:positions AS integer[])) AS u(task_id, position)
), taken AS (
  UPDATE task SET taken_count = taken_count + 1 WHERE id = ANY(CAST(:general_ids AS integer[]))
)
SELECT id FROM a
"""
).bindparams(bindparam("created_at", type_=UTCDateTime), bindparam("expires_at", type_=UTCDateTime))

PROJECT_VIEW = text(
    "SELECT p.name, p.question, p.instructions, p.answer_type, p.allow_none, o.label, o.value, "
    "o.hotkey FROM project p LEFT JOIN answer_option o ON o.project_id = p.id "
    "WHERE p.id = :project_id ORDER BY o.position, o.id"
).columns(
    column("name", String), column("question", String), column("instructions", String),
    column("answer_type", String), column("allow_none", Boolean), column("label", String),
    column("value", String), column("hotkey", String),
)  # fmt: skip

# --- submitting a suite ------------------------------------------------------------------

_OWN = select(Assignment).where(
    Assignment.id == bindparam("assignment_id"), Assignment.labeler_id == bindparam("labeler_id")
)
LOCK_OWN = (
    _OWN.execution_options(populate_existing=True),
    _OWN.with_for_update(key_share=True).execution_options(populate_existing=True),
)

# The labeler's suite, locked (a repeated submit waits here, then reads the new status),
# with what submitting it needs of the pool, the project's option values in display order
# and the suite's tasks: one row per task, in suite order. ``rules`` says whether the pool
# or its project has quality rules (anything but an empty list: when unsure, the rules
# engine loads and looks).
_SUITE_TASK = "at.position, t.id, t.kind, t.known_answer, t.hint, t.image, m.sha256, m.content_type"
_SUBMIT_CONTEXT = f"""
SELECT a.id, a.pool_id, a.labeler_id, a.status, a.reward_cents, a.created_at, a.expires_at,
  p.owner_id, p.overlap, p.auto_accept, p.fee_percent,
  CAST(p.quality_rules AS TEXT) <> '[]' OR CAST(pr.quality_rules AS TEXT) <> '[]' AS rules,
  p.max_overlap, p.min_confidence, p.answer_weight_skill_id, p.model_id,
  p.model_control_answers, p.model_control_correct, p.model_confusion,
  {{values}} AS option_values, pr.answer_type, pr.allow_none, {_SUITE_TASK}
FROM assignment a JOIN pool p ON p.id = a.pool_id JOIN project pr ON pr.id = p.project_id
LEFT JOIN assignment_task at ON at.assignment_id = a.id
LEFT JOIN task t ON t.id = at.task_id LEFT JOIN media_file m ON m.id = t.media_id
WHERE a.id = :assignment_id AND a.labeler_id = :labeler_id ORDER BY at.position
"""
_OPTION_VALUES = (  # (SQLite, PostgreSQL): the values as a list
    "(SELECT json_group_array(v.value) FROM (SELECT o.value FROM answer_option o "
    "WHERE o.project_id = p.project_id ORDER BY o.position, o.id) v)",
    "(SELECT array_agg(o.value ORDER BY o.position, o.id) FROM answer_option o "
    "WHERE o.project_id = p.project_id)",
)
SUBMIT_CONTEXT = tuple(
    text(_SUBMIT_CONTEXT.format(values=values) + suffix).columns(
        column("id", Integer), column("pool_id", Integer), column("labeler_id", Integer),
        column("status", String), column("reward_cents", Integer),
        column("created_at", UTCDateTime), column("expires_at", UTCDateTime),
        column("owner_id", Integer), column("overlap", Integer), column("auto_accept", Boolean),
        column("fee_percent", Float), column("rules", Boolean),
        column("max_overlap", Integer), column("min_confidence", Float),
        column("answer_weight_skill_id", Integer), column("model_id", Integer),
        column("model_control_answers", Integer), column("model_control_correct", Integer),
        column("model_confusion", JSON),
        column("option_values", JSON),
        column("answer_type", String), column("allow_none", Boolean),
        *(column(name) for name in ("position", "id", "kind", "known_answer", "hint", "image",
                                    "sha256", "content_type")),
    )
    for values, suffix in zip(_OPTION_VALUES, ("", " FOR NO KEY UPDATE OF a"), strict=True)
)  # fmt: skip

SUITE_TASKS = text(
    f"SELECT {_SUITE_TASK} FROM assignment_task at JOIN task t ON t.id = at.task_id "
    "LEFT JOIN media_file m ON m.id = t.media_id WHERE at.assignment_id = :assignment_id "
    "ORDER BY at.position"
)

INSERT_ANSWERS = insert(Answer.__table__)

# PostgreSQL: answers, the suite's new status and the submitted counters (task rows locked
# in id order) in one statement; returns (id, kind, submitted count, overlap) per task.
SUBMIT_SUITE_PG = text(
    """
WITH answers AS (
  INSERT INTO answer (assignment_id, task_id, pool_id, labeler_id, value, first_value,
                      excluded, created_at)
  SELECT :assignment_id, u.task_id, :pool_id, :labeler_id, u.value, u.first_value, false, :now
  FROM unnest(CAST(:task_ids AS integer[]), CAST(:answer_values AS varchar[]),
              CAST(:first_values AS varchar[])) AS u(task_id, value, first_value)
), finished AS (
  UPDATE assignment SET status = :status, submitted_at = :now, reviewed_at = :reviewed_at,
    duration_seconds = :duration_seconds
  WHERE id = :assignment_id
), locked AS (
  SELECT id FROM task WHERE id = ANY(CAST(:task_ids AS integer[])) ORDER BY id
  FOR NO KEY UPDATE
)
UPDATE task SET submitted_count = task.submitted_count + 1 FROM locked
WHERE task.id = locked.id
RETURNING task.id, task.kind, task.submitted_count, task.overlap
"""
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("reviewed_at", type_=UTCDateTime))

_task = Task.__table__
_a = Assignment.__table__


def _bump(column: str, pg: bool):
    target = _task.c[column]
    if pg:  # lock in id order: concurrent writers never deadlock on task counters
        locked = (
            select(_task.c.id)
            .where(_task.c.id.in_(bindparam("ids", expanding=True)))
            .order_by(_task.c.id)
            .with_for_update(key_share=True)
            .subquery()
        )
        where = _task.c.id == locked.c.id
    else:
        where = _task.c.id.in_(bindparam("ids", expanding=True))
    return (
        update(_task)
        .where(where)
        .values({column: target + bindparam("delta")})
        .returning(_task.c.id, _task.c.kind, target, _task.c.overlap)
    )


BUMP = {
    (column, pg): _bump(column, pg)
    for column in ("taken_count", "submitted_count")
    for pg in (False, True)
}

FINISH_ASSIGNMENT = (
    update(_a)
    .where(_a.c.id == bindparam("assignment_id"))
    .values(
        status=bindparam("status"),
        submitted_at=bindparam("submitted_at"),
        reviewed_at=bindparam("reviewed_at"),
        duration_seconds=bindparam("duration_seconds"),
    )
)
