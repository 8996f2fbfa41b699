"""experiment reruns

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 16:44:07.518868
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=36), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_experiments_parent_id"), ["parent_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_experiments_parent_id_experiments"),
            "experiments",
            ["parent_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_experiments_parent_id_experiments"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_experiments_parent_id"))
        batch_op.drop_column("parent_id")
