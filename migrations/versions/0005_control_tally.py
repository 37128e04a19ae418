"""running counts behind the "Control accuracy" skill

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 23:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# the labeler's control answers in the skill owner's pools (as the skill was computed)
_CONTROL_ANSWERS = (
    "FROM answer a JOIN task t ON t.id = a.task_id JOIN pool p ON p.id = a.pool_id "
    "JOIN skill s ON s.owner_id = p.owner_id "
    "WHERE s.id = user_skill.skill_id AND a.labeler_id = user_skill.user_id "
    "AND t.kind = 'control'"
)


def upgrade() -> None:
    with op.batch_alter_table('user_skill', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('control_answers', sa.Integer(), server_default='0', nullable=False)
        )
        batch_op.add_column(
            sa.Column('control_correct', sa.Integer(), server_default='0', nullable=False)
        )
    op.execute(
        f"UPDATE user_skill SET control_answers = (SELECT COUNT(a.id) {_CONTROL_ANSWERS}), "
        "control_correct = (SELECT COALESCE(SUM(CASE WHEN a.value = t.known_answer "
        f"THEN 1 ELSE 0 END), 0) {_CONTROL_ANSWERS}) "
        "WHERE skill_id IN (SELECT id FROM skill WHERE name = 'Control accuracy')"
    )


def downgrade() -> None:
    with op.batch_alter_table('user_skill', schema=None) as batch_op:
        batch_op.drop_column('control_correct')
        batch_op.drop_column('control_answers')
