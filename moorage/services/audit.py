"""The audit log: one row per mutating action, written in the action's own transaction.

Inside ``one_row`` (which ``services.guard.change`` opens for every route that changes a
workload) every ``record`` in that session adds its details to ONE row, written at the
end of the block and credited to the actor who opened it: a PATCH that also prunes
snapshots, or a promote that queues a deploy, is one row, never two or three.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.security.roles import Actor
from moorage.store.tables import AuditEntry

ONE_ROW = "moorage.audit.one_row"


@dataclass
class OneRow:
    """The row an action writes: the steps inside it add their details."""

    actor: Actor
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, action: str, target_type: str, target_id: str, details: dict[str, Any]) -> None:
        """A step's record: merged into the row's details; one about another object (a
        trigger a bind creates) is kept under its action, naming that object."""
        if self.target_id is None:  # a create: the target is known once made
            self.target_type, self.target_id = target_type, target_id
        if (target_type, target_id) == (self.target_type, self.target_id):
            self.details.update(details)
        else:
            self.details[action] = {target_type: target_id, **details}


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Write an audit row, or, inside ``one_row``, add ``details`` to that row."""
    row: OneRow | None = session.info.get(ONE_ROW)
    if row is not None:
        row.add(action, target_type, target_id, details or {})
        return
    session.add(
        AuditEntry(
            actor=actor.username,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details={"via": actor.via, **(details or {})},
        )
    )


@contextmanager
def one_row(
    session: Session, actor: Actor, action: str, target_type: str, target_id: str | None
) -> Iterator[OneRow]:
    """Collect every ``record`` in ``session`` into one row, added when the block ends
    without an error (nothing is added otherwise). ``target_id`` None: the first
    record names it (a create)."""
    if ONE_ROW in session.info:
        raise RuntimeError("an audited action cannot open another inside it")
    row = OneRow(actor, action, target_type, target_id)
    session.info[ONE_ROW] = row
    try:
        yield row
    finally:
        del session.info[ONE_ROW]
    if row.target_id is None:
        raise RuntimeError(f"{action} named no target for its audit row")
    session.add(
        AuditEntry(
            actor=actor.username,
            action=action,
            target_type=row.target_type,
            target_id=row.target_id,
            details={"via": actor.via, **row.details},
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
