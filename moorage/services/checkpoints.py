"""Deploy checkpoints and rollback (SPEC section 10): the rows.

A workload with ``checkpoint: before-deploy`` has every deploy capture a snapshot
(origin ``checkpoint``, mode ``stop``) before it changes anything; the deployment keeps
its id as ``checkpoint_snapshot_id``. Checkpoints follow the workload's ``keep_last``,
counted apart from its captures (``snapshots.RETENTION_GROUPS``): a deploy never pushes
out a snapshot a person or a schedule took.

``POST .../deployments/{did}/rollback`` runs deployment ``did``'s artifact again: its
config (``SourceKind.promoted`` with its artifact, so an image runs by the same image
id) becomes the saved config, and a deploy with reason ``rollback:<did>`` is queued.
With ``data``, the data goes back too: the checkpoint taken by the first deploy after
``did`` (the data as ``did`` left it) is restored while the workload is held stopped,
and the deploy of ``did``'s artifact follows it (``snapshots/checkpoint.Rollback``), so
the old code never runs on the new data, nor the new code on the old data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, NotFound
from moorage.plugins.kind_config import stored_config
from moorage.plugins.registry import Registry
from moorage.security.roles import SYSTEM, Actor
from moorage.services import audit, deploys, powers
from moorage.services import snapshots as snapshot_service
from moorage.services import volumes as volume_service
from moorage.services.audit import AuditAction
from moorage.services.workloads import get as get_workload
from moorage.services.workloads import set_desired_state, validated
from moorage.settings import Settings
from moorage.store.states import (
    CaptureMode,
    CheckpointMode,
    DeploymentStatus,
    DesiredState,
    SnapshotOrigin,
    SnapshotStatus,
)
from moorage.store.tables import Deployment, Snapshot, Workload


def set_mode(session: Session, actor: Actor, workload_id: str, mode: str) -> Workload:
    """Set the workload's ``checkpoint`` (422 ``invalid_checkpoint`` for another value);
    its own audit record, inside the caller's guarded change."""
    workload = get_workload(session, workload_id)
    try:
        chosen = CheckpointMode(mode)
    except ValueError:
        raise InvalidInput(
            f"checkpoint must be one of {', '.join(CheckpointMode)}", code="invalid_checkpoint"
        ) from None
    workload.checkpoint = chosen.value
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_CHECKPOINT,
        "workload",
        workload_id,
        {"checkpoint": chosen.value},
    )
    return workload


def request(
    session: Session, registry: Registry, workload_id: str, deployment_id: str
) -> str | None:
    """The checkpoint a starting deploy captures: a ``capturing`` snapshot of every
    volume, linked to the deployment; None (nothing written) when the workload takes no
    checkpoints or has no volumes."""
    workload = get_workload(session, workload_id)
    if workload.checkpoint != CheckpointMode.BEFORE_DEPLOY:
        return None
    if not volume_service.read(session, workload_id):
        return None
    snap = snapshot_service.request_capture(
        session,
        SYSTEM,
        registry,
        workload_id,
        volumes=None,
        mode=CaptureMode.STOP.value,
        origin=SnapshotOrigin.CHECKPOINT,
    )
    deployment = session.get(Deployment, deployment_id)
    if deployment is not None:
        deployment.checkpoint_snapshot_id = snap.id
    return snap.id


def outcome(session: Session, snapshot_id: str) -> tuple[SnapshotStatus, str | None]:
    """Where a checkpoint capture ended: its status and error."""
    snap = session.get(Snapshot, snapshot_id)
    if snap is None:
        return SnapshotStatus.FAILED, "the checkpoint snapshot was deleted"
    return snap.status, snap.error


def deployment(session: Session, workload_id: str, deployment_id: str) -> Deployment:
    row = session.get(Deployment, deployment_id)
    if row is None or row.workload_id != workload_id:
        raise NotFound(f"no deployment {deployment_id} of workload {workload_id}")
    return row


def checkpoint_after(session: Session, workload_id: str, target: Deployment) -> Snapshot:
    """The checkpoint taken by the first deploy after ``target`` that took one: the data
    as ``target`` left it. 409 ``no_checkpoint`` when there is none or it is not ready."""
    later = session.scalars(
        select(Deployment)
        .where(
            Deployment.workload_id == workload_id,
            Deployment.created_at > target.created_at,
            Deployment.checkpoint_snapshot_id.is_not(None),
        )
        .order_by(Deployment.created_at)
        .limit(1)
    ).first()
    if later is None:
        raise Conflict(
            f"no deploy after {target.id} took a checkpoint, so its data cannot go back; "
            'set "checkpoint": "before-deploy" for future deploys, or roll back without data',
            code="no_checkpoint",
        )
    snap = session.get(Snapshot, later.checkpoint_snapshot_id)
    if snap is None or snap.status != SnapshotStatus.READY:
        state = "gone (retention or a delete)" if snap is None else snap.status.value
        raise Conflict(
            f"the checkpoint of deployment {later.id} ({later.checkpoint_snapshot_id}) is {state}",
            code="no_checkpoint",
        )
    return snap


@dataclass(frozen=True)
class Plan:
    """A rollback accepted: the deployment whose artifact runs again, and the checkpoint
    to restore first (None: code only)."""

    target: str
    checkpoint: str | None


def rollback(
    session: Session,
    actor: Actor,
    registry: Registry,
    settings: Settings,
    workload_id: str,
    deployment_id: str,
    *,
    data: bool,
) -> tuple[Plan, Deployment | None]:
    """Save ``deployment_id``'s config and artifact as the workload's config; without
    ``data`` queue its deploy (returned), with it hold the workload stopped for the
    restore (the caller restores, then queues ``queue_after_restore``).

    409 ``not_rollbackable`` for a deployment that did not succeed or recorded no
    artifact, ``no_checkpoint`` (with ``data``) as ``checkpoint_after``; host powers as
    a deploy (403 ``needs_admin``). One ``workload.rollback`` audit record.
    """
    workload = get_workload(session, workload_id)
    target = deployment(session, workload_id, deployment_id)
    if target.status != DeploymentStatus.SUCCEEDED or not target.artifact:
        raise Conflict(
            f"deployment {deployment_id} is {target.status.value} and recorded nothing that "
            "ran; only a succeeded deployment can be rolled back to",
            code="not_rollbackable",
        )
    checkpoint = checkpoint_after(session, workload_id, target).id if data else None
    kind = registry.source(workload.kind)
    ran: dict[str, Any] = dict((target.inputs or {}).get("config") or workload.config)
    model = validated(registry, workload.kind, kind.promoted(ran, dict(target.artifact)))
    stored = stored_config(model)
    with session.no_autoflush:
        volume_service.check_kept(session, registry, workload, stored)
        view = powers.view_of(session, workload, config=stored)
    granted = powers.review(
        session, actor, registry, settings, workload, view, what="roll back a workload"
    )
    workload.config = stored
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_ROLLBACK,
        "workload",
        workload_id,
        {"deployment": deployment_id, "data": data, "checkpoint": checkpoint, **granted},
    )
    plan = Plan(deployment_id, checkpoint)
    if data:
        set_desired_state(session, workload_id, DesiredState.STOPPED)
        return plan, None
    set_desired_state(session, workload_id, DesiredState.RUNNING)
    return plan, deploys.enqueue(session, actor, workload_id, f"rollback:{deployment_id}")


def queue_after_restore(
    session: Session, actor: Actor, workload_id: str, plan: Plan, restored: bool
) -> Deployment | None:
    """After a rollback's restore the workload is to run again. Restored: the deploy of
    the target's artifact is queued (reason ``rollback:<did>``). Not restored: nothing
    was swapped, and the code stays with the data: reconcile brings back what ran (the
    saved config, the target's, shows as a pending change)."""
    set_desired_state(session, workload_id, DesiredState.RUNNING)
    if not restored:
        return None
    return deploys.enqueue(session, actor, workload_id, f"rollback:{plan.target}")
