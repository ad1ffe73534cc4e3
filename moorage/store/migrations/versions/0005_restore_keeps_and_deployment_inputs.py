"""A restore says which replaced data it kept; a deployment records what it ran;
a workload that never deployed reads ``never_deployed``.

Revision ID: 0005
Revises: 0004

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # Existing rows get the empty value; a JSON literal default works on SQLite and PostgreSQL.
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("inputs", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )

    with op.batch_alter_table("restores", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kept_paths", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column("kept_reason", sa.Text(), nullable=True))

    # SPEC section 9: a workload that never deployed reads "never_deployed" ("created" before).
    op.execute("UPDATE workloads SET status = 'never_deployed' WHERE status = 'created'")


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("UPDATE workloads SET status = 'created' WHERE status = 'never_deployed'")

    with op.batch_alter_table("restores", schema=None) as batch_op:
        batch_op.drop_column("kept_reason")
        batch_op.drop_column("kept_paths")

    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("inputs")
