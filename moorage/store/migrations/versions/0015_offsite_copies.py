"""Off-site copy policies and copies (issue 17, SPEC section 11).

Reserved so that work on the three issues can land in any order; filled in by the
change that adds these tables.

Revision ID: 0015
Revises: 0014

"""

from __future__ import annotations

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""


def downgrade() -> None:
    """Downgrade schema."""
