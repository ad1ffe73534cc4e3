"""A workload records the host powers it was allowed (issue 12: the policy on what a
workload may ask of Docker).

Existing workloads start with none: a deploy of one that asks for any needs an admin
once (a PATCH, an env change or a deploy by an admin grants them).

Revision ID: 0006
Revises: 0005

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("host_powers", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.drop_column("host_powers")
