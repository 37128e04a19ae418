"""running total of a pool's reservation

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 21:35:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pool', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('reserved_cents', sa.BigInteger(), server_default='0', nullable=False)
        )
    # from the ledger, which stays the record of every movement
    op.execute(
        "UPDATE pool SET reserved_cents = COALESCE((SELECT SUM(l.amount_cents) "
        "FROM ledger_entry l WHERE l.pool_id = pool.id AND l.user_id = pool.owner_id "
        "AND l.account = 'reserved'), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table('pool', schema=None) as batch_op:
        batch_op.drop_column('reserved_cents')
