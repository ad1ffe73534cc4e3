"""The audit log (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from moorage.api.deps import Admin, DbSession
from moorage.api.schemas import AuditList, AuditOut
from moorage.services import audit

router = APIRouter(prefix="/api/audit", tags=["audit"])
MAX_ID = 2**63 - 1  # the widest integer column either database has; beyond it is 422


@router.get("")
def list_audit(
    actor: Admin,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Entries older than this id")
    ] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=128)] = None,
) -> AuditList:
    rows = audit.entries(
        session, limit=limit, before=before, target_type=target_type, target_id=target_id
    )
    return AuditList(
        items=[
            AuditOut(
                id=r.id,
                at=r.at,
                actor=r.actor,
                action=r.action,
                target_type=r.target_type,
                target_id=r.target_id,
                details=r.details,
            )
            for r in rows
        ]
    )
