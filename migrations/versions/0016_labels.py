"""aggregated_label keyed by (run_id, task_id), without foreign keys: a trigger deletes a
run's labels with the run (nothing deletes single tasks; a pool's deletion cascades to its
runs)

Writing a big run's labels was bound by PostgreSQL's per-row work: the serial id, two
unique indexes and two foreign-key checks a row. The table is rebuilt (SQLite cannot drop a
primary key in place) and its rows copied.

Revision ID: 0015_labels
Revises: 0015_model_loop
Create Date: 2026-12-02 05:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0015_labels'
down_revision = '0015_model_loop'
branch_labels = None
depends_on = None

_COLUMNS = 'run_id, task_id, value, confidence, answer_count, option_confidence'


# deletes a run's labels with the run (aggregated_label has no foreign key)
_TRIGGER = {
    True: [
        'CREATE FUNCTION aggregated_label_of_run_deleted() RETURNS trigger LANGUAGE plpgsql AS '
        '$$ BEGIN DELETE FROM aggregated_label WHERE run_id = OLD.id; RETURN OLD; END $$',
        'CREATE TRIGGER aggregated_label_of_run AFTER DELETE ON aggregation_run '
        'FOR EACH ROW EXECUTE FUNCTION aggregated_label_of_run_deleted()',
    ],
    False: [
        'CREATE TRIGGER aggregated_label_of_run AFTER DELETE ON aggregation_run '
        'BEGIN DELETE FROM aggregated_label WHERE run_id = OLD.id; END',
    ],
}
_DROP_TRIGGER = {
    True: [
        'DROP TRIGGER aggregated_label_of_run ON aggregation_run',
        'DROP FUNCTION aggregated_label_of_run_deleted()',
    ],
    False: ['DROP TRIGGER aggregated_label_of_run'],
}


def _rebuild(*, keyed: bool) -> None:
    columns = [
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column('confidence', sa.Float(), nullable=True),
        sa.Column('answer_count', sa.Integer(), nullable=False),
        sa.Column('option_confidence', sa.JSON(), nullable=True),
    ]
    if keyed:
        columns.append(sa.PrimaryKeyConstraint('run_id', 'task_id', name='pk_aggregated_label'))
    else:
        columns = [sa.Column('id', sa.Integer(), nullable=False), *columns]
        columns += [
            sa.ForeignKeyConstraint(['run_id'], ['aggregation_run.id'], ondelete='CASCADE'),
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
    for statement in _TRIGGER[op.get_bind().dialect.name == 'postgresql']:
        op.execute(statement)


def downgrade() -> None:
    for statement in _DROP_TRIGGER[op.get_bind().dialect.name == 'postgresql']:
        op.execute(statement)
    _rebuild(keyed=False)
