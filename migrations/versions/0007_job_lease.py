"""job lease: heartbeat, lease token, worker, attempts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:45:00
"""
from alembic import op
import sqlalchemy as sa
import app.db.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', app.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('lease_token', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('worker', sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column('attempts', sa.Integer(), server_default='0', nullable=False)
        )
        batch_op.add_column(
            sa.Column('max_attempts', sa.Integer(), server_default='3', nullable=False)
        )
        batch_op.create_index('ix_job_status_heartbeat', ['status', 'heartbeat_at'], unique=False)
    # Jobs already running were started before leases existed: count them as a first attempt.
    op.execute("UPDATE job SET attempts = 1 WHERE status = 'running'")


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_status_heartbeat')
        batch_op.drop_column('max_attempts')
        batch_op.drop_column('attempts')
        batch_op.drop_column('worker')
        batch_op.drop_column('lease_token')
        batch_op.drop_column('heartbeat_at')
