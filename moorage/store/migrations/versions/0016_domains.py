"""Domains and DNS providers (issue 18, SPEC section 12).

Reserved so that work on the three issues can land in any order; filled in by the
change that adds these tables.

Revision ID: 0016
Revises: 0015

"""

from __future__ import annotations

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""


def downgrade() -> None:
    """Downgrade schema."""
