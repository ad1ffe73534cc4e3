"""A recovery point names the workloads of its stage it skipped (issue 12, newcomer pass):
a workload without volumes (a stateless app) has nothing a point could miss, so a point
is taken without it instead of refusing the whole stage.

Existing points skipped none (they were refused when any workload had no volumes).

Revision ID: 0018
Revises: 0017

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("recovery_points", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("skipped", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("recovery_points", schema=None) as batch_op:
        batch_op.drop_column("skipped")
