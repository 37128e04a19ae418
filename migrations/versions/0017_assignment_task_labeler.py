"""assignment_task.labeler_id (copied from its assignment) and an index on (task_id,
labeler_id): picking a suite asks of each candidate task "has this labeler had it?" by one
index probe, instead of reading the labeler's whole history in the pool; task's index on
(pool_id, kind, taken_count) gets id as a last column: a random window of a pool's control
tasks (whose taken_count stays 0) is read in id order from it

Revision ID: 0017_task_labeler
Revises: 0015_labels
Create Date: 2026-12-02 08:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017_task_labeler'
down_revision = '0015_labels'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index('ix_task_pool_kind_taken')
        batch_op.create_index(
            'ix_task_pool_kind_taken', ['pool_id', 'kind', 'taken_count', 'id'], unique=False
        )
    with op.batch_alter_table('assignment_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('labeler_id', sa.Integer(), nullable=True))
    op.execute(
        'UPDATE assignment_task SET labeler_id = '
        '(SELECT a.labeler_id FROM assignment a WHERE a.id = assignment_task.assignment_id)'
    )
    with op.batch_alter_table('assignment_task', schema=None) as batch_op:
        batch_op.alter_column('labeler_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index('ix_assignment_task_task')
        batch_op.create_index(
            'ix_assignment_task_task_labeler', ['task_id', 'labeler_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('assignment_task', schema=None) as batch_op:
        batch_op.drop_index('ix_assignment_task_task_labeler')
        batch_op.create_index('ix_assignment_task_task', ['task_id'], unique=False)
        batch_op.drop_column('labeler_id')
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_index('ix_task_pool_kind_taken')
        batch_op.create_index(
            'ix_task_pool_kind_taken', ['pool_id', 'kind', 'taken_count'], unique=False
        )
