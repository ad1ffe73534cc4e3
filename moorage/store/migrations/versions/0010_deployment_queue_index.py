"""An index for the deploy workers' queue scan: the oldest queued deployment of each
workload is read on every worker pass, and a webhook fan-out adds hundreds of rows at
once, so the scan reads only queued rows instead of the whole history (issue 12).

Revision ID: 0010
Revises: 0009

"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployments_status_workload_created",
            ["status", "workload_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_status_workload_created")
