"""Prebuilt statements of quality control: the ban that blocks a labeler, the running
control-accuracy counts. The labeling hot path builds on ``BAN_ID``."""

from __future__ import annotations

from sqlalchemy import bindparam, text

from app.db.types import UTCDateTime

# the ban, if any, that keeps a labeler out of a pool now: its id (the longest ban first)
BAN_ID = """
SELECT b.id FROM ban b
WHERE b.labeler_id = :labeler_id AND b.requester_id = {requester} AND b.lifted_at IS NULL
  AND (b.expires_at IS NULL OR b.expires_at > :now)
  AND (b.scope = 'all_projects' OR (b.scope = 'project' AND b.project_id = {project})
       OR (b.scope = 'pool' AND b.pool_id = {pool}))
ORDER BY b.expires_at IS NULL DESC, b.expires_at DESC LIMIT 1
"""
ACTIVE_BAN_ID = text(
    BAN_ID.format(requester=":requester_id", project=":project_id", pool=":pool_id")
).bindparams(bindparam("now", type_=UTCDateTime))

# --- the labeler's control accuracy over the requester's pools ---------------------------

# adds a suite's control answers to the labeler's running counts and sets the percentage
# (no row changes when the labeler has no value for the skill yet: the caller creates it
# from CONTROL_TOTALS, the labeler's whole history)
ADD_CONTROL_TALLY = text(
    """
UPDATE user_skill SET updated_at = :now,
  control_answers = control_answers + :answers, control_correct = control_correct + :correct,
  value = ROUND(CAST(100.0 * (control_correct + :correct) / (control_answers + :answers)
                AS NUMERIC), 2)
WHERE user_id = :labeler_id
  AND skill_id = (SELECT id FROM skill WHERE owner_id = :requester_id AND name = :name)
RETURNING value
"""
).bindparams(bindparam("now", type_=UTCDateTime))
_RIGHT = "SUM(CASE WHEN a.value = t.known_answer THEN 1 ELSE 0 END)"
CONTROL_TOTALS = text(
    f"SELECT COUNT(a.id), COALESCE({_RIGHT}, 0) "
    "FROM answer a JOIN task t ON t.id = a.task_id JOIN pool p ON p.id = a.pool_id "
    "WHERE a.labeler_id = :labeler_id AND t.kind = 'control' AND p.owner_id = :requester_id"
)
# one suite's control answers: (how many, how many right)
SUITE_CONTROLS = text(
    f"SELECT COUNT(a.id), COALESCE({_RIGHT}, 0) FROM answer a JOIN task t ON t.id = a.task_id "
    "WHERE a.assignment_id = :assignment_id AND t.kind = 'control'"
)
