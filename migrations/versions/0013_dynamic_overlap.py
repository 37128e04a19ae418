"""dynamic overlap: the pool's max overlap, min confidence, answer-weight skill and model
(with its control tally); a task's weighted votes, confidence, preliminary answers
(baseline solutions) and its model answer; a project's "pre-select the model's answer"

Revision ID: 0012_dynamic_overlap
Revises: 0012_clients_captcha
Create Date: 2026-12-02 01:10:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012_dynamic_overlap'
down_revision = '0012_clients_captcha'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pool', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_overlap', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('min_confidence', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('answer_weight_skill_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('model_id', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('model_control_answers', sa.Integer(), server_default='0', nullable=False)
        )
        batch_op.add_column(
            sa.Column('model_control_correct', sa.Integer(), server_default='0', nullable=False)
        )
        batch_op.create_foreign_key(
            'fk_pool_answer_weight_skill', 'skill', ['answer_weight_skill_id'], ['id'],
            ondelete='SET NULL',
        )
        batch_op.create_foreign_key(
            'fk_pool_model', 'trained_model', ['model_id'], ['id'], ondelete='SET NULL'
        )
        batch_op.create_check_constraint(
            'ck_pool_max_overlap', 'max_overlap IS NULL OR max_overlap >= overlap'
        )
        batch_op.create_check_constraint(
            'ck_pool_min_confidence',
            'min_confidence IS NULL OR (min_confidence >= 0 AND min_confidence <= 1)',
        )
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('votes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('confidence', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('baseline_solutions', sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column('model_answer', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.add_column(sa.Column('model_probability', sa.Float(), nullable=True))
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'preselect_model_answer', sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('project', schema=None) as batch_op:
        batch_op.drop_column('preselect_model_answer')
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_column('model_probability')
        batch_op.drop_column('model_answer')
        batch_op.drop_column('baseline_solutions')
        batch_op.drop_column('confidence')
        batch_op.drop_column('votes')
    with op.batch_alter_table('pool', schema=None) as batch_op:
        batch_op.drop_constraint('ck_pool_min_confidence', type_='check')
        batch_op.drop_constraint('ck_pool_max_overlap', type_='check')
        batch_op.drop_constraint('fk_pool_model', type_='foreignkey')
        batch_op.drop_constraint('fk_pool_answer_weight_skill', type_='foreignkey')
        batch_op.drop_column('model_control_correct')
        batch_op.drop_column('model_control_answers')
        batch_op.drop_column('model_id')
        batch_op.drop_column('answer_weight_skill_id')
        batch_op.drop_column('min_confidence')
        batch_op.drop_column('max_overlap')
