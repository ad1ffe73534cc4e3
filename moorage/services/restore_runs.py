"""The ``restores`` rows a restore writes (``snapshots/restore/``): accepted, its phases,
how it ended, what recovery decided, and where the data it replaced is kept.

The restore itself (files, journal, engine) is ``snapshots/restore/``; it calls these
in short transactions of its own. A row another path already ended is left as it is,
and recovery never marks a row before the volumes it describes are settled.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from moorage.errors import NotFound
from moorage.security.roles import Actor
from moorage.services import audit
from moorage.services.audit import AuditAction
from moorage.store.states import (
    DeploymentStatus,
    RestorePhase,
    RestoreStatus,
    SnapshotStatus,
    SwapMethod,
)
from moorage.store.tables import Deployment, Restore, Snapshot, utcnow

__all__ = ["Restore", "Snapshot"]  # the row types, for annotations outside services

CUT_OFF = "Moorage stopped during the restore, before any volume was touched"


def create(
    s: Session,
    actor: Actor,
    restore_id: str,
    workload_id: str,
    snapshot_id: str,
    volumes: list[str],
    total_bytes: int,
) -> Restore:
    """An accepted restore (``running``, phase ``queued``) and its one ``snapshot.restore``
    audit row."""
    row = Restore(
        id=restore_id,
        workload_id=workload_id,
        snapshot_id=snapshot_id,
        status=RestoreStatus.RUNNING,
        phase=RestorePhase.QUEUED,
        volumes=volumes,
        total_bytes=total_bytes,
    )
    s.add(row)
    s.flush()
    audit.record(
        s,
        actor,
        AuditAction.SNAPSHOT_RESTORE,
        "workload",
        workload_id,
        {"restore": restore_id, "snapshot": snapshot_id, "volumes": row.volumes},
    )
    return row


def running(s: Session, workload_id: str) -> str | None:
    """The id of the workload's ``running`` restore, if one is."""
    return s.scalar(
        select(Restore.id).where(
            Restore.workload_id == workload_id, Restore.status == RestoreStatus.RUNNING
        )
    )


def get(s: Session, workload_id: str, restore_id: str) -> Restore:
    """The restore row of that workload; raises NotFound otherwise."""
    row: Restore | None = s.get(Restore, restore_id)
    if row is None or row.workload_id != workload_id:
        raise NotFound(f"no restore {restore_id!r} of workload {workload_id!r}")
    return row


def find(s: Session, restore_id: str) -> Restore | None:
    """The restore row, or None when it is gone: a workload delete takes its restores'
    rows with it, also one accepted and still waiting for the workload's lock."""
    return s.get(Restore, restore_id)


def load(s: Session, restore_id: str) -> Restore:
    """The restore row, which must exist (an accepted restore's own)."""
    row = s.get(Restore, restore_id)
    assert row is not None
    return row


def ready_snapshot(s: Session, restore_id: str) -> Snapshot | None:
    """The snapshot the restore puts back, or None when it is gone or no longer ready."""
    snap = s.get(Snapshot, load(s, restore_id).snapshot_id)
    return snap if snap is not None and snap.status == SnapshotStatus.READY else None


def refuse(s: Session, restore_id: str, error: str) -> None:
    """End a restore that touched nothing: ``failed`` with ``error``."""
    row = load(s, restore_id)
    row.status, row.error, row.finished_at = RestoreStatus.FAILED, error, utcnow()
    row.phase = RestorePhase.DONE


def prepare(s: Session, restore_id: str, swap: SwapMethod, staging: list[str]) -> None:
    """Record the swap method and every staging path (named after the restore), so a
    crash before the journal leaves them findable."""
    row = load(s, restore_id)
    row.swap = swap
    row.staging = staging


def set_phase(s: Session, restore_id: str, phase: RestorePhase, **values: Any) -> None:
    """Move the row to ``phase`` (and ``progress_bytes``, when given)."""
    s.execute(update(Restore).where(Restore.id == restore_id).values(phase=phase, **values))


def finish(s: Session, restore_id: str, status: RestoreStatus, error: str | None = None) -> None:
    """End a still-running row (keeping an error already noted when none is given); a row
    another path already ended is left as it is."""
    row = s.get(Restore, restore_id)
    if row is not None and row.status == RestoreStatus.RUNNING:
        row.status, row.finished_at, row.phase = status, utcnow(), RestorePhase.DONE
        row.error = error or row.error


def rolled_back(s: Session, restore_id: str, reason: str) -> None:
    """Every volume is as it was: ``rolled_back`` with ``reason``."""
    row = s.get(Restore, restore_id)
    if row is not None:
        row.status, row.error, row.phase = RestoreStatus.ROLLED_BACK, reason, RestorePhase.DONE
        row.finished_at = row.finished_at or utcnow()


def rolled_forward(s: Session, restore_id: str) -> None:
    """Every restored volume is in place: a still-running row becomes ``succeeded``."""
    finish(s, restore_id, RestoreStatus.SUCCEEDED)


def note(s: Session, restore_id: str, message: str) -> None:
    """Put ``message`` on the row as its error (recovery says why it left something)."""
    row = s.get(Restore, restore_id)
    if row is not None:
        row.error = message


def note_unhealthy(s: Session, restore_id: str, deployment_id: str) -> None:
    """When the redeploy after the restore failed, add to the row's error that the
    workload did not come up healthy, with the deployment's error."""
    deployment = s.get(Deployment, deployment_id)
    row = s.get(Restore, restore_id)
    if deployment is not None and deployment.status == DeploymentStatus.FAILED and row is not None:
        said = f"{row.error}; " if row.error else ""
        row.error = (
            f"{said}the workload did not come up healthy after it "
            f"(deployment {deployment_id}): {deployment.error}"
        )


def staging_of(s: Session, restore_id: str) -> list[str] | None:
    """The staging paths on the row; None when the row is gone."""
    row = s.get(Restore, restore_id)
    return None if row is None else list(row.staging)


def unjournaled(s: Session, journaled: set[str]) -> list[tuple[str, list[str]]]:
    """``(restore id, staging paths)`` of every ``running`` restore without a journal: a
    crash cut it off before it touched a volume (``cut_off`` ends it)."""
    rows = s.scalars(select(Restore).where(Restore.status == RestoreStatus.RUNNING))
    return [(row.id, list(row.staging)) for row in rows if row.id not in journaled]


def cut_off(s: Session, restore_id: str) -> None:
    """End a restore a crash cut off before any volume was touched: ``failed``."""
    row = load(s, restore_id)
    row.status, row.finished_at, row.phase = RestoreStatus.FAILED, utcnow(), RestorePhase.DONE
    row.error = CUT_OFF


def kept_any(s: Session, restore_id: str) -> bool:
    """Whether the row says replaced data was kept on disk (or the row is gone)."""
    row = s.get(Restore, restore_id)
    return row is None or bool(row.kept_paths)


def packed(
    s: Session,
    restore_id: str,
    pre_restore_id: str | None,
    kept: list[str],
    reason: str | None,
) -> None:
    """Record where the replaced data went: the pre-restore snapshot (when one was
    written) and the paths kept on disk, with why (``kept_paths``, ``kept_reason``)."""
    row = s.get(Restore, restore_id)
    if row is not None:
        if pre_restore_id is not None:
            row.pre_restore_snapshot_id = pre_restore_id
        row.kept_paths = kept
        row.kept_reason = reason
