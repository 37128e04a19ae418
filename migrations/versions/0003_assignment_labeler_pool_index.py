"""index assignments by labeler and pool

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 20:55:00
"""
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_assignment_labeler_pool', 'assignment', ['labeler_id', 'pool_id'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_assignment_labeler_pool', table_name='assignment')
