"""Off-site copy policies and copies (issue 17, SPEC section 11).

``offsite_policies``: one per workload, naming its storage target and what the target
keeps; ``snapshot_copies``: one per snapshot and target, with its state.

Revision ID: 0015
Revises: 0014

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "offsite_policies",
        sa.Column("workload_id", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=32), nullable=False),
        sa.Column("keep_last", sa.Integer(), nullable=True),
        sa.Column("keep_daily", sa.Integer(), nullable=True),
        sa.Column("keep_weekly", sa.Integer(), nullable=True),
        sa.Column("window_hours", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["workload_id"], ["workloads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["target_id"], ["storage_targets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workload_id"),
    )
    op.create_table(
        "snapshot_copies",
        sa.Column("snapshot_id", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=32), nullable=False),
        sa.Column("workload_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshots.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["target_id"], ["storage_targets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("snapshot_id", "target_id"),
    )
    with op.batch_alter_table("snapshot_copies", schema=None) as batch_op:
        batch_op.create_index("ix_snapshot_copies_status", ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_snapshot_copies_workload_id"), ["workload_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("snapshot_copies")
    op.drop_table("offsite_policies")
