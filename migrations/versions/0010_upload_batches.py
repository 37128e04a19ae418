"""staging rows for uploads imported in short batches

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'upload_row',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('upload_key', sa.String(length=64), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('row', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('image', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column('input_values', sa.JSON(), nullable=False),
        sa.Column('media_id', sa.Integer(), nullable=True),
        sa.Column('known_answer', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column('hint', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column('overlap', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_upload_row_key_seq', 'upload_row', ['upload_key', 'seq'])
    op.create_index('ix_upload_row_key_image', 'upload_row', ['upload_key', 'image'])


def downgrade() -> None:
    op.drop_index('ix_upload_row_key_image', table_name='upload_row')
    op.drop_index('ix_upload_row_key_seq', table_name='upload_row')
    op.drop_table('upload_row')
