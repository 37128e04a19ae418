"""PostgreSQL: upload_row (an upload's checked rows before they move into the pool) is
UNLOGGED: staging writes no write-ahead log. A server crash empties it, and an upload job
that was staging starts over from its file (as after any death of its worker).

Revision ID: 0018_upload_unlogged
Revises: 0017_task_labeler
Create Date: 2026-12-02 09:00:00
"""
from alembic import op


revision = '0018_upload_unlogged'
down_revision = '0017_task_labeler'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE upload_row SET UNLOGGED')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE upload_row SET LOGGED')
