"""Clones, restore drills and recovery points (issue 16, SPEC section 10): the
``drills`` table, ``snapshots.verified_at`` (when a drill of it last passed) and the
``recovery_points`` table (a project stage captured at one instant, restored together).

Revision ID: 0014
Revises: 0013

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "drills",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workload_id", sa.String(length=32), nullable=False),
        sa.Column("snapshot_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("check", sa.JSON(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["workload_id"], ["workloads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drills_workload_created", ["workload_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_drills_snapshot_id"), ["snapshot_id"], unique=False)
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verified_at", sa.DateTime(), nullable=True))
    op.create_table(
        "recovery_points",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=63), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("restore_status", sa.String(length=16), nullable=False),
        sa.Column("restores", sa.JSON(), nullable=False),
        sa.Column("restore_error", sa.Text(), nullable=True),
        sa.Column("restored_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("recovery_points", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recovery_points_project_created", ["project_id", "created_at"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("recovery_points", schema=None) as batch_op:
        batch_op.drop_index("ix_recovery_points_project_created")
    op.drop_table("recovery_points")
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_column("verified_at")
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drills_snapshot_id"))
        batch_op.drop_index("ix_drills_workload_created")
    op.drop_table("drills")
