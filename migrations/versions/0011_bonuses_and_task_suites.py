"""user bonuses as rows of their own: id, assignment, texts, and the operation item that
paid them (unique, so a retried operation never pays twice); task suites composed by the
requester (task_suite, task.suite_id, pool.fixed_suites); webhook subscriptions and
their deliveries

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 22:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import app.db.types


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_bonus',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('labeler_id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=True),
    sa.Column('assignment_id', sa.Integer(), nullable=True),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('public_title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('public_message', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('private_comment', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('operation_id', sa.String(length=64), nullable=True),
    sa.Column('item_index', sa.Integer(), nullable=True),
    sa.Column('ledger_entry_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['requester_id'], ['user_account.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['labeler_id'], ['user_account.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pool_id'], ['pool.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ledger_entry_id'], ['ledger_entry.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('operation_id', 'item_index', name='uq_user_bonus_operation_item')
    )
    with op.batch_alter_table('user_bonus', schema=None) as batch_op:
        batch_op.create_index('ix_user_bonus_requester', ['requester_id', 'id'], unique=False)
        batch_op.create_index('ix_user_bonus_labeler', ['labeler_id'], unique=False)
    # Bonuses paid before this revision live only in the ledger: give each its row.
    op.execute(
        "INSERT INTO user_bonus (requester_id, labeler_id, pool_id, amount_cents, public_title, "
        "public_message, private_comment, ledger_entry_id, created_at) "
        "SELECT counterparty_id, user_id, pool_id, amount_cents, '', memo, '', id, created_at "
        "FROM ledger_entry WHERE kind = 'bonus' AND amount_cents > 0 "
        "AND counterparty_id IS NOT NULL ORDER BY id"
    )
    op.create_table('task_suite',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('overlap', sa.Integer(), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('overlap >= 1', name='ck_task_suite_overlap'),
    sa.ForeignKeyConstraint(['pool_id'], ['pool.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('task_suite', schema=None) as batch_op:
        batch_op.create_index('ix_task_suite_pool', ['pool_id'], unique=False)
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suite_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_task_suite', ['suite_id'], unique=False)
        batch_op.create_foreign_key(
            'fk_task_suite_id', 'task_suite', ['suite_id'], ['id'], ondelete='SET NULL'
        )
    with op.batch_alter_table('pool', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('fixed_suites', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


    op.create_table('webhook_subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('event_type', sa.String(length=40), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret_key', sa.String(length=200), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['user_account.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pool_id'], ['pool.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pool_id', 'event_type', 'url', name='uq_webhook_subscription')
    )
    with op.batch_alter_table('webhook_subscription', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_subscription_owner', ['owner_id'], unique=False)
    op.create_table('webhook_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('event', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subscription_id'], ['webhook_subscription.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhook_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_delivery_due', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_table('webhook_delivery')
    op.drop_table('webhook_subscription')
    with op.batch_alter_table('pool', schema=None) as batch_op:
        batch_op.drop_column('fixed_suites')
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_constraint('fk_task_suite_id', type_='foreignkey')
        batch_op.drop_index('ix_task_suite')
        batch_op.drop_column('suite_id')
    with op.batch_alter_table('task_suite', schema=None) as batch_op:
        batch_op.drop_index('ix_task_suite_pool')
    op.drop_table('task_suite')
    with op.batch_alter_table('user_bonus', schema=None) as batch_op:
        batch_op.drop_index('ix_user_bonus_labeler')
        batch_op.drop_index('ix_user_bonus_requester')
    op.drop_table('user_bonus')
