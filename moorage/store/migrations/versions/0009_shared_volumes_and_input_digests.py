"""A volume may say ``shared``; a workload keeps the digest of its saved inputs and of
what its last successful deployment ran, so ``pending_changes`` costs no query (issue 13).

Existing volumes are not shared. The digests of existing workloads are computed here
with a frozen copy of ``services.inputs.digest``: the saved ones from their rows, the
deployed ones from the newest succeeded deployment that recorded an artifact.

Revision ID: 0009
Revises: 0008

"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOUNT_KEYS = ("name", "scope", "source", "target", "read_only")


def _digest(inputs: dict[str, Any]) -> str | None:
    """``services.inputs.digest`` as of this revision."""
    if not inputs:
        return None
    canonical = {
        "config": inputs.get("config", {}),
        "env": inputs.get("env", {}),
        "volumes": [{key: v.get(key) for key in MOUNT_KEYS} for v in inputs.get("volumes", [])],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


workloads = sa.table(
    "workloads",
    sa.column("id", sa.String),
    sa.column("config", sa.JSON),
    sa.column("saved_digest", sa.String),
    sa.column("deployed_digest", sa.String),
)
env_vars = sa.table(
    "env_vars", sa.column("workload_id", sa.String), sa.column("key"), sa.column("value")
)
volumes = sa.table(
    "volumes",
    sa.column("workload_id", sa.String),
    sa.column("position", sa.Integer),
    *(sa.column(key) for key in MOUNT_KEYS),
)
deployments = sa.table(
    "deployments",
    sa.column("workload_id", sa.String),
    sa.column("status", sa.String),
    sa.column("finished_at", sa.DateTime),
    sa.column("artifact", sa.JSON),
    sa.column("inputs", sa.JSON),
)


def _backfill(conn: sa.Connection) -> None:
    env: dict[str, dict[str, str]] = {}
    for wid, key, value in conn.execute(sa.select(env_vars)):
        env.setdefault(wid, {})[key] = value
    mounts: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(sa.select(volumes).order_by(volumes.c.position)):
        mounts.setdefault(row.workload_id, []).append(
            {
                key: (bool(row.read_only) if key == "read_only" else row._mapping[key])
                for key in MOUNT_KEYS
            }
        )
    deployed: dict[str, str | None] = {}
    done = sa.select(deployments).where(deployments.c.status == "succeeded")
    for row in conn.execute(done.order_by(deployments.c.finished_at.desc())):
        if row.artifact and row.workload_id not in deployed:
            deployed[row.workload_id] = _digest(row.inputs or {})
    for wid, config in conn.execute(sa.select(workloads.c.id, workloads.c.config)).all():
        saved = {"config": config, "env": env.get(wid, {}), "volumes": mounts.get(wid, [])}
        conn.execute(
            workloads.update()
            .where(workloads.c.id == wid)
            .values(saved_digest=_digest(saved), deployed_digest=deployed.get(wid))
        )


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("saved_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("deployed_digest", sa.String(length=64), nullable=True))
    _backfill(op.get_bind())


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("workloads", schema=None) as batch_op:
        batch_op.drop_column("deployed_digest")
        batch_op.drop_column("saved_digest")
    with op.batch_alter_table("volumes", schema=None) as batch_op:
        batch_op.drop_column("shared")
