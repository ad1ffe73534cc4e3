"""The guard every route that changes a workload goes through, and the uniqueness race.

``change`` is the one way in (STYLE principle 6, SPEC section 9)::

    with guard.change(session, locks, actor, AuditAction.WORKLOAD_UPDATE, workload_id) as change:
        workloads.update(session, actor, ...)      # any number of steps
        change.then(lambda: deployer.converge(workload_id))   # optional: acts on the world

It takes the workload's lock (``services/locks.py``: the one deploys, restores,
reconcile and teardown take), waiting at most ``WAIT_SECONDS`` (then 409
``workload_busy``). Every ``audit.record`` of the steps lands in ONE audit row
credited to ``actor``. When the block ends without an error it keeps the workload's
``saved_digest`` (``services.inputs``) current, writes that row, commits, runs the
``then`` steps (after the commit: they may write through sessions of their own) and
only then lets the lock go. On an error nothing is written.

The lock is taken before the session touches the database and released after the
commit, so no other change of the workload can interleave with this one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from moorage.errors import Conflict
from moorage.security.roles import Actor
from moorage.services import audit, inputs
from moorage.services.audit import AuditAction
from moorage.services.locks import WorkloadLocks
from moorage.store.tables import Workload

WAIT_SECONDS = 60.0
"""How long a change waits for a running deploy, restore or other change of the workload."""


@dataclass
class Change:
    """A change in progress: its audit row, and what runs once it is committed."""

    row: audit.OneRow
    after: list[Callable[[], Any]] = field(default_factory=list)

    def note(self, **details: Any) -> None:
        """Add to the change's audit row."""
        self.row.details.update(details)

    def then(self, step: Callable[[], Any]) -> None:
        """Run ``step`` after the commit, still under the workload's lock."""
        self.after.append(step)


@contextmanager
def change(
    session: Session,
    locks: WorkloadLocks,
    actor: Actor,
    action: AuditAction,
    workload_id: str | None,
    *,
    wait: float = WAIT_SECONDS,
) -> Iterator[Change]:
    """Guard one change of workload ``workload_id`` (None: a create, which no one else
    can reach before it commits). See the module docstring."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a guarded change starts with nothing unsaved in its session")
    if workload_id is None:
        yield from _guarded(session, actor, action, None)
        return
    with locks.hold(workload_id, timeout=wait):
        yield from _guarded(session, actor, action, workload_id)


def _guarded(
    session: Session, actor: Actor, action: AuditAction, workload_id: str | None
) -> Iterator[Change]:
    session.expire_all()  # what was read before the lock was taken may be stale
    try:
        with audit.one_row(session, actor, action, "workload", workload_id) as row:
            done = Change(row)
            yield done
            if row.target_type == "workload" and row.target_id is not None:
                workload = session.get(Workload, row.target_id)
                if workload is not None:  # None: the change deleted it
                    inputs.refresh(session, workload)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    for step in done.after:
        step()


def flush_or_conflict(session: Session, message: str) -> None:
    """Turn a lost uniqueness race in the database into a Conflict."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(message, code="duplicate") from None
