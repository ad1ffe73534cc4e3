"""Domains and DNS providers (issue 18, SPEC section 12): ``dns_providers``, ``domains``
(one host routed to a workload's port, unique across the instance) and ``dns_records``
(the address records Moorage wrote and still owns).

Revision ID: 0016
Revises: 0015

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "dns_providers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=63), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "domains",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workload_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=63), nullable=True),
        sa.Column("tls", sa.String(length=16), nullable=False),
        sa.Column("redirect_http", sa.Boolean(), nullable=False),
        sa.Column("dns_provider_id", sa.String(length=32), nullable=True),
        sa.Column("dns_state", sa.String(length=16), nullable=False),
        sa.Column("dns_error", sa.Text(), nullable=True),
        sa.Column("acme_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["workload_id"], ["workloads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dns_provider_id"], ["dns_providers.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("host"),
    )
    with op.batch_alter_table("domains", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_domains_workload_id"), ["workload_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_domains_dns_provider_id"), ["dns_provider_id"], unique=False
        )
    op.create_table(
        "dns_records",
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("rtype", sa.String(length=8), nullable=False),
        sa.Column("provider_id", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["dns_providers.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("host", "rtype"),
    )
    with op.batch_alter_table("dns_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dns_records_provider_id"), ["provider_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("dns_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dns_records_provider_id"))
    op.drop_table("dns_records")
    with op.batch_alter_table("domains", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_domains_dns_provider_id"))
        batch_op.drop_index(batch_op.f("ix_domains_workload_id"))
    op.drop_table("domains")
    op.drop_table("dns_providers")
