"""The instance's own backup (SPEC section 11): ``POST /api/instance/backups`` (admin)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel

from moorage.api.deps import Admin, DbSession, State
from moorage.api.errors import responses
from moorage.api.schemas.base import Body
from moorage.offsite import instance
from moorage.services import offsite

router = APIRouter(prefix="/api/instance", tags=["instance"])


class BackupIn(Body):
    target_id: str


class BackupOut(BaseModel):
    target_id: str
    key: str
    size: int
    sha256: str
    created_at: datetime


@router.post("/backups", status_code=201, responses=responses(422, 502))
def create_backup(body: BackupIn, actor: Admin, session: DbSession, state: State) -> BackupOut:
    """Put an online, consistent copy of the database and the instance key on the target,
    encrypted to it, read back and verified. ``moorage instance restore`` on a fresh
    machine brings it back with the target's passphrase."""
    target = offsite.opened(session, state.settings, body.target_id)
    store = state.registry.storage_kind(target.kind).open(target.config)
    try:
        made = instance.create(
            state.settings, store, target.recipient, target.identity, datetime.now(UTC)
        )
    finally:
        store.close()
    offsite.record_backup(session, actor, body.target_id, made.key, made.size)
    return BackupOut(
        target_id=body.target_id,
        key=made.key,
        size=made.size,
        sha256=made.sha256,
        created_at=made.created_at,
    )
