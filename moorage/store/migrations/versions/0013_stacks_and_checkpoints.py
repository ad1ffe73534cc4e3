"""Compose volumes, capture hooks and deploy checkpoints (issue 16, SPEC section 10).

Reserved so that work on the three issues can land in any order; filled in by the
change that adds these tables.

Revision ID: 0013
Revises: 0012

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("service", sa.String(length=63), nullable=True))
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snapshot_hooks", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("checkpoint", sa.String(length=16), nullable=False, server_default="none")
        )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("checkpoint_snapshot_id", sa.String(length=32), nullable=True)
        )
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("log", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_column("log")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("checkpoint_snapshot_id")
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.drop_column("checkpoint")
        batch_op.drop_column("snapshot_hooks")
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.drop_column("service")
