"""aggregated_label keyed by (run_id, task_id): no serial id, no second unique index, no
foreign key to task (a run's labels go with the run; nothing deletes single tasks)

Writing a big run's labels was bound by PostgreSQL's per-row work: the serial id, two
unique indexes and two foreign-key checks a row. The table is rebuilt (SQLite cannot drop a
primary key in place) and its rows copied.

Revision ID: 0015_labels
Revises: 0012_multilabel
Create Date: 2026-12-02 05:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0015_labels'
down_revision = '0012_multilabel'
branch_labels = None
depends_on = None

_COLUMNS = 'run_id, task_id, value, confidence, answer_count, option_confidence'


def _rebuild(*, keyed: bool) -> None:
    columns = [
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column('confidence', sa.Float(), nullable=True),
        sa.Column('answer_count', sa.Integer(), nullable=False),
        sa.Column('option_confidence', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['run_id'], ['aggregation_run.id'], ondelete='CASCADE'),
    ]
    if keyed:
        columns.append(sa.PrimaryKeyConstraint('run_id', 'task_id', name='pk_aggregated_label'))
    else:
        columns = [sa.Column('id', sa.Integer(), nullable=False), *columns]
        columns += [
            sa.ForeignKeyConstraint(['task_id'], ['task.id'], ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('id'),
            sa.UniqueConstraint('run_id', 'task_id', name='uq_aggregated_label'),
        ]
    op.create_table('aggregated_label_new', *columns)
    op.execute(
        f'INSERT INTO aggregated_label_new ({_COLUMNS}) '
        f'SELECT {_COLUMNS} FROM aggregated_label ORDER BY run_id, task_id'
    )
    op.drop_table('aggregated_label')
    op.rename_table('aggregated_label_new', 'aggregated_label')


def upgrade() -> None:
    _rebuild(keyed=True)


def downgrade() -> None:
    _rebuild(keyed=False)
