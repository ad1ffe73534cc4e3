"""Deleting a workload: the whole of it, in the one order that leaves nothing half gone.

``delete_workload`` runs as one guarded change (``services.guard``: the workload's lock,
one ``workload.delete`` audit row, the commit). Under the lock it refuses a workload
that keeps snapshots unless they are purged too, tears down what the workload runs
(the caller's ``teardown``: the deployer's, which reads the rows, so it comes before
they change), deletes the rows, and only once they are committed removes the archives.
A failed teardown leaves rows and archives as they were; volume data on disk is kept.
Never touches the engine itself: this layer does not import the deployer.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from moorage.errors import Conflict
from moorage.security.roles import Actor
from moorage.services import guard, snapshots, workloads
from moorage.services.audit import AuditAction
from moorage.services.locks import WorkloadLocks
from moorage.settings import Settings


class Teardown(Protocol):
    """Remove what a workload runs, given its id (``Deployer.teardown``), its Docker
    volumes only with ``purge_volumes``; raises a ``MoorageError`` (409 ``workload_busy``
    or ``has_volumes``, 502/503 from the engine) when it cannot."""

    def __call__(self, workload_id: str, *, purge_volumes: bool) -> None: ...


def delete_workload(
    session: Session,
    locks: WorkloadLocks,
    actor: Actor,
    settings: Settings,
    workload_id: str,
    *,
    purge_snapshots: bool,
    purge_volumes: bool = False,
    teardown: Teardown,
    wait: float = guard.WAIT_SECONDS,
) -> None:
    """Tear the workload down, then forget it (SPEC section 9, api.md's workloads row).

    Raises ``NotFound`` for no such workload, ``Conflict`` ``has_snapshots`` when it keeps
    snapshots and ``purge_snapshots`` is false, ``Conflict`` ``has_volumes`` when Docker
    volumes hold its data (a Compose project's named volumes) and ``purge_volumes`` is
    false (the first promise: a delete never drops data nobody named), ``Conflict``
    ``workload_busy`` when its
    lock (held by a deploy, a restore, a capture or another change) stays taken for
    ``wait`` seconds, and whatever ``teardown`` raises. On any error nothing is written
    and no file is removed."""
    with guard.change(session, locks, actor, AuditAction.WORKLOAD_DELETE, workload_id, wait=wait):
        kept = snapshots.list_for(session, workload_id)
        if kept and not purge_snapshots:
            raise Conflict(
                f"the workload has {len(kept)} snapshot(s); delete them first or pass "
                "purge_snapshots=true",
                code="has_snapshots",
            )
        archives = [snapshots.archive_path(settings, snap) for snap in kept]
        teardown(workload_id, purge_volumes=purge_volumes)  # before the rows: it reads them
        workloads.delete(session, actor, workload_id)
    # Only once the rows are gone: a failed teardown must not leave rows without files.
    for path in archives:
        path.unlink(missing_ok=True)
