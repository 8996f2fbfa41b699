"""history cursor

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 16:28:19.262835
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "history_seq", sa.BigInteger(), server_default="0", nullable=False
            )
        )

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reset_seq", sa.BigInteger(), nullable=True))

    with op.batch_alter_table("epoch_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))

    # Rows written before cursors existed get their id, which grows with time.
    op.execute("UPDATE epoch_records SET seq = id")
    op.execute(
        "UPDATE experiments SET history_seq = COALESCE("
        "(SELECT MAX(seq) FROM epoch_records"
        " WHERE epoch_records.experiment_id = experiments.id), 0)"
    )

    with op.batch_alter_table("epoch_records", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_index(batch_op.f("ix_epoch_records_experiment_id"))
        batch_op.create_index(
            "ix_epoch_records_experiment_id_seq", ["experiment_id", "seq"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("epoch_records", schema=None) as batch_op:
        batch_op.drop_index("ix_epoch_records_experiment_id_seq")
        batch_op.create_index(
            batch_op.f("ix_epoch_records_experiment_id"),
            ["experiment_id"],
            unique=False,
        )
        batch_op.drop_column("seq")

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("reset_seq")

    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("history_seq")
