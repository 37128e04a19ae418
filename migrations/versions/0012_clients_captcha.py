"""captchas: a pool's captcha_frequency, and the captchas put to labelers (answers kept
only as keyed hashes)

Revision ID: 0012_clients_captcha
Revises: 0011
Create Date: 2026-12-02 01:20:00
"""
from alembic import op
import sqlalchemy as sa
import app.db.types


revision = '0012_clients_captcha'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pool', schema=None) as batch_op:
        batch_op.add_column(sa.Column('captcha_frequency', sa.String(length=8), nullable=True))
    op.create_table('captcha_challenge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('labeler_id', sa.Integer(), nullable=False),
    sa.Column('salt', sa.String(length=32), nullable=False),
    sa.Column('answer_hash', sa.String(length=64), nullable=False),
    sa.Column('image', sa.LargeBinary(), nullable=True),
    sa.Column('solved', sa.Boolean(), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['pool_id'], ['pool.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['labeler_id'], ['user_account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('captcha_challenge', schema=None) as batch_op:
        batch_op.create_index(
            'ix_captcha_challenge_pool_labeler', ['pool_id', 'labeler_id', 'id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('captcha_challenge', schema=None) as batch_op:
        batch_op.drop_index('ix_captcha_challenge_pool_labeler')
    op.drop_table('captcha_challenge')
    with op.batch_alter_table('pool', schema=None) as batch_op:
        batch_op.drop_column('captcha_frequency')
