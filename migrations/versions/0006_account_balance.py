"""a guarded running balance per user (money cannot go below zero)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_SUM = "SELECT user_id, SUM(amount_cents) AS cents FROM ledger_entry WHERE account = 'balance' GROUP BY user_id"


def upgrade() -> None:
    op.create_table(
        'account_balance',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('cents', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('cents >= 0', name='ck_account_balance_not_negative'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id'),
    )
    # A balance that an earlier version let go below zero (concurrent withdrawals) is
    # written off to zero by an entry of its own, so the ledger still sums to the balance.
    op.execute(
        "INSERT INTO ledger_entry (user_id, account, kind, amount_cents, memo, created_at) "
        "SELECT s.user_id, 'balance', 'write_off', -s.cents, "
        f"'Write-off of a negative balance', CURRENT_TIMESTAMP FROM ({_SUM}) s WHERE s.cents < 0"
    )
    op.execute(
        "INSERT INTO account_balance (user_id, cents) "
        f"SELECT user_id, CASE WHEN cents < 0 THEN 0 ELSE cents END FROM ({_SUM}) s"
    )


def downgrade() -> None:
    op.drop_table('account_balance')
