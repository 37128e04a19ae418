"""model in the loop: the pool model's confusion counts and its retraining (every N newly
confident tasks, from an optional base collection; the model being trained now)

Revision ID: 0015_model_loop
Revises: 0012_multilabel
Create Date: 2026-12-02 05:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0015_model_loop"
down_revision = "0012_multilabel"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pool", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_confusion", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("model_retrain_every", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("model_retrain_collection_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("model_retrain_seen", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("model_retrain_model_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_pool_retrain_collection",
            "collection",
            ["model_retrain_collection_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            "fk_pool_retrain_model",
            "trained_model",
            ["model_retrain_model_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("pool", schema=None) as batch_op:
        batch_op.drop_constraint("fk_pool_retrain_model", type_="foreignkey")
        batch_op.drop_constraint("fk_pool_retrain_collection", type_="foreignkey")
        batch_op.drop_column("model_retrain_model_id")
        batch_op.drop_column("model_retrain_seen")
        batch_op.drop_column("model_retrain_collection_id")
        batch_op.drop_column("model_retrain_every")
        batch_op.drop_column("model_confusion")
