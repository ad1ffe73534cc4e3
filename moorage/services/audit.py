"""The audit log: one row per mutating action, written in the action's own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.security.roles import Actor
from moorage.store.tables import AuditEntry


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor=actor.username,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details={"via": actor.via, **(details or {})},
        )
    )


def entries(
    session: Session,
    *,
    limit: int = 100,
    before: int | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    if target_type is not None:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id is not None:
        query = query.where(AuditEntry.target_id == target_id)
    return list(session.scalars(query))
