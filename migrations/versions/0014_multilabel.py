"""several answers: project.answer_type and allow_none; each option's confidence of an
aggregated set; multilabel collections (collection.classification_type, the tags of an
item)

Revision ID: 0012_multilabel
Revises: 0012_dynamic_overlap
Create Date: 2026-12-02 01:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_multilabel'
down_revision = '0012_dynamic_overlap'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('project', sa.Column('answer_type', sa.String(length=16), nullable=False,
                                       server_default='single'))
    op.add_column('project', sa.Column('allow_none', sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.add_column('aggregated_label', sa.Column('option_confidence', sa.JSON(), nullable=True))
    op.add_column('collection', sa.Column('classification_type', sa.String(length=16),
                                          nullable=False, server_default='multiclass'))
    op.add_column('collection_item', sa.Column('labels', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('collection_item') as batch:
        batch.drop_column('labels')
    with op.batch_alter_table('collection') as batch:
        batch.drop_column('classification_type')
    with op.batch_alter_table('aggregated_label') as batch:
        batch.drop_column('option_confidence')
    with op.batch_alter_table('project') as batch:
        batch.drop_column('allow_none')
        batch.drop_column('answer_type')
