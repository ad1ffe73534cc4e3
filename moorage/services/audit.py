"""The audit log: one row per mutating action, written in the action's own transaction.

Inside ``one_row`` (which ``services.guard.change`` opens for every route that changes a
workload) every ``record`` in that session adds its details to ONE row, written at the
end of the block and credited to the actor who opened it: a PATCH that also prunes
snapshots, or a promote that queues a deploy, is one row, never two or three.

Every action a row may name is an ``AuditAction``; the rows already written keep whatever
they say (an action a later version renames still reads), so the column stays a string.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.security.roles import Actor
from moorage.store.tables import AuditEntry

ONE_ROW = "moorage.audit.one_row"


class AuditAction(StrEnum):
    """What an audit row says was done: ``<target>.<verb>``. The UI names each one
    (``audit.actions.*`` in both catalogs, held to this list by a test)."""

    SESSION_CREATE = "session.create"
    SESSION_DELETE = "session.delete"
    TOKEN_CREATE = "token.create"  # noqa: S105 (an action, not a secret)
    TOKEN_REVOKE = "token.revoke"  # noqa: S105 (an action, not a secret)
    USER_CREATE = "user.create"
    USER_UPDATE = "user.update"
    USER_DELETE = "user.delete"
    PROJECT_CREATE = "project.create"
    PROJECT_UPDATE = "project.update"
    PROJECT_DELETE = "project.delete"
    WORKLOAD_CREATE = "workload.create"
    WORKLOAD_UPDATE = "workload.update"
    WORKLOAD_DELETE = "workload.delete"
    WORKLOAD_DEPLOY = "workload.deploy"
    WORKLOAD_PROMOTE = "workload.promote"
    WORKLOAD_RECONCILE = "workload.reconcile"
    WORKLOAD_STOP = "workload.stop"
    WORKLOAD_START = "workload.start"
    WORKLOAD_RESTART = "workload.restart"
    WORKLOAD_RETENTION = "workload.retention"
    WORKLOAD_SNAPSHOT_HOOKS = "workload.snapshot_hooks"
    WORKLOAD_CHECKPOINT = "workload.checkpoint"
    WORKLOAD_ROLLBACK = "workload.rollback"
    WORKLOAD_ENV_REPLACE = "workload.env.replace"
    WORKLOAD_VOLUMES_REPLACE = "workload.volumes.replace"
    WORKLOAD_CHAIN_REPLACE = "workload.chain.replace"
    WORKLOAD_DOMAINS_REPLACE = "workload.domains.replace"
    DNS_PROVIDER_PUT = "dns_provider.put"
    DNS_PROVIDER_DELETE = "dns_provider.delete"
    WORKLOAD_TRIGGER_BIND = "workload.trigger.bind"
    WORKLOAD_TRIGGER_UNBIND = "workload.trigger.unbind"
    ENV_REVEAL = "env.reveal"
    TRIGGER_CREATE = "trigger.create"
    TRIGGER_UPDATE = "trigger.update"
    TRIGGER_DELETE = "trigger.delete"
    TRIGGER_TOKEN_REGENERATE = "trigger.token.regenerate"  # noqa: S105 (an action, not a secret)
    SNAPSHOT_CAPTURE = "snapshot.capture"
    SNAPSHOT_IMPORT = "snapshot.import"
    SNAPSHOT_DELETE = "snapshot.delete"
    SNAPSHOT_RESTORE = "snapshot.restore"
    SNAPSHOT_PRUNE = "snapshot.prune"
    SNAPSHOT_CLONE = "snapshot.clone"
    SNAPSHOT_DRILL = "snapshot.drill"
    SNAPSHOT_DRILL_SKIPPED = "snapshot.drill_skipped"
    RECOVERY_POINT_CREATE = "recovery_point.create"
    RECOVERY_POINT_RESTORE = "recovery_point.restore"
    STORAGE_TARGET_CREATE = "storage_target.create"
    STORAGE_TARGET_UPDATE = "storage_target.update"
    STORAGE_TARGET_DELETE = "storage_target.delete"
    STORAGE_TARGET_TEST = "storage_target.test"
    WORKLOAD_OFFSITE = "workload.offsite"
    SNAPSHOT_COPY = "snapshot.copy"
    OFFSITE_PRUNE = "offsite.prune"
    INSTANCE_BACKUP = "instance.backup"
    INSTANCE_BACKUP_FAILED = "instance.backup_failed"


@dataclass
class OneRow:
    """The row an action writes: the steps inside it add their details."""

    actor: Actor
    action: AuditAction
    target_type: str
    target_id: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def add(
        self, action: AuditAction, target_type: str, target_id: str, details: dict[str, Any]
    ) -> None:
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
    action: AuditAction,
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
            action=str(action),
            target_type=target_type,
            target_id=target_id,
            details={"via": actor.via, **(details or {})},
        )
    )


@contextmanager
def one_row(
    session: Session, actor: Actor, action: AuditAction, target_type: str, target_id: str | None
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
            action=str(action),
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


def latest(
    session: Session, action: AuditAction, target_type: str, target_id: str
) -> AuditEntry | None:
    """The newest row of ``action`` on this target, if any."""
    return session.scalar(
        select(AuditEntry)
        .where(
            AuditEntry.action == action,
            AuditEntry.target_type == target_type,
            AuditEntry.target_id == target_id,
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
