"""Webhook replay claims: one row per (trigger, delivery id or signed body) in the replay
window, with the pair as primary key, so two copies of a delivery arriving together
queue once (issue 13).

Revision ID: 0008
Revises: 0007

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "delivery_claims",
        sa.Column("trigger_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["trigger_id"], ["triggers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("trigger_id", "key"),
    )
    with op.batch_alter_table("delivery_claims", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_claims_trigger_at", ["trigger_id", "at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("delivery_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_claims_trigger_at")
    op.drop_table("delivery_claims")
