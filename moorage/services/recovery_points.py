"""Recovery points (SPEC section 10): the rows. A recovery point is every workload of one
project stage captured at one instant; ``snapshots/recovery_points.py`` does the capture
(all quiesced, all captured, all resumed) and the restore together.

Each workload's part is an ordinary snapshot (origin ``recovery-point``, never pruned),
and each part of a restore an ordinary restore (its own row and journal), so a crash is
recovered per workload by what snapshots and restores already do; this row only ties
them together and says how the whole went.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import InvalidInput, NotFound
from moorage.names import new_id
from moorage.plugins.registry import Registry
from moorage.security.roles import Actor
from moorage.services import audit, captures, projects, restore_runs
from moorage.services import snapshots as snapshot_service
from moorage.services.audit import AuditAction
from moorage.store.states import CaptureMode, RestoreStatus, SnapshotOrigin, SnapshotStatus
from moorage.store.tables import Project, RecoveryPoint, Restore, Snapshot, Workload

MAX_WORKLOADS = 64
"""Workloads one recovery point holds at most (each is quiesced at once)."""


def stage_workloads(s: Session, project: Project, stage: str) -> list[Workload]:
    """The workloads of ``project``/``stage``, by id (the order locks are taken in)."""
    query = select(Workload).where(Workload.project_id == project.id, Workload.stage == stage)
    return list(s.scalars(query.order_by(Workload.id)))


def create(
    s: Session, actor: Actor, registry: Registry, slug: str, stage: str, mode: str
) -> RecoveryPoint:
    """A ``capturing`` point and one ``capturing`` snapshot per workload of the stage (all
    their volumes), with one ``recovery_point.create`` audit row; the caller commits and
    starts the capture. A workload with nothing to capture (no volumes, or a kind without
    them: a stateless app) has nothing the point could miss: it is left out, named with
    why in ``skipped``, and neither quiesced nor restored with the point. 404 for no such
    project; 422 ``unknown_stage``, ``invalid_mode``, ``no_volumes`` (no workload of the
    stage has volumes; the message names them), ``invalid_input`` (no workload, too many)."""
    project = projects.get(s, slug)
    if stage not in project.stages:
        raise InvalidInput(
            f"stage {stage!r} is not one of project {slug!r}'s stages "
            f"({', '.join(project.stages)})",
            code="unknown_stage",
        )
    if mode not in tuple(CaptureMode):
        raise InvalidInput(
            f"mode must be one of {', '.join(CaptureMode)}, got {mode!r}", code="invalid_mode"
        )
    members = stage_workloads(s, project, stage)
    if not members:
        raise InvalidInput(f"{slug}/{stage} has no workloads to capture", code="invalid_input")
    if len(members) > MAX_WORKLOADS:
        raise InvalidInput(
            f"a recovery point holds at most {MAX_WORKLOADS} workloads", code="invalid_input"
        )
    point = RecoveryPoint(
        id=new_id("rp"), project_id=project.id, stage=stage, mode=CaptureMode(mode), items=[]
    )
    items = []
    skipped = []
    captured: dict[str, dict[str, Any]] = {}  # workload id -> what its part holds, for the row
    for w in members:
        nothing = snapshot_service.nothing_to_capture(s, registry, w)
        if nothing is not None:
            skipped.append({"workload_id": w.id, "name": w.name, "reason": nothing.message})
            continue
        try:
            snap = snapshot_service.request_capture(
                s,
                actor,
                registry,
                w.id,
                volumes=None,
                mode=mode,
                origin=SnapshotOrigin.RECOVERY_POINT,
                audited=False,
            )
        except InvalidInput as exc:
            raise InvalidInput(f"workload {w.name!r}: {exc.message}", code=exc.code) from None
        items.append({"workload_id": w.id, "name": w.name, "snapshot_id": snap.id})
        captured[w.id] = {"name": w.name, "snapshot": snap.id, "volumes": list(snap.volumes)}
    if not items:
        why = "; ".join(f"{k['name']}: {k['reason']}" for k in skipped)
        raise InvalidInput(
            f"no workload of {slug}/{stage} has volumes, so a recovery point would hold "
            f"nothing ({why})",
            code="no_volumes",
        )
    point.items = items
    point.skipped = skipped
    s.add(point)
    s.flush()
    audit.record(
        s,
        actor,
        AuditAction.RECOVERY_POINT_CREATE,
        "project",
        slug,
        {
            "recovery_point": point.id,
            "stage": stage,
            "mode": mode,
            "snapshots": captured,
            "skipped": [k["name"] for k in skipped],
        },
    )
    return point


def get(s: Session, slug: str, point_id: str) -> RecoveryPoint:
    project = projects.get(s, slug)
    point = s.get(RecoveryPoint, point_id)
    if point is None or point.project_id != project.id:
        raise NotFound(f"no recovery point {point_id!r} of project {slug!r}")
    return point


def list_for(s: Session, slug: str, stage: str | None = None) -> list[RecoveryPoint]:
    """The project's recovery points (of one stage), newest first, at most 100."""
    project = projects.get(s, slug)
    query = select(RecoveryPoint).where(RecoveryPoint.project_id == project.id)
    if stage is not None:
        query = query.where(RecoveryPoint.stage == stage)
    order = (RecoveryPoint.created_at.desc(), RecoveryPoint.id.desc())
    return list(s.scalars(query.order_by(*order).limit(100)))


def load(s: Session, point_id: str) -> RecoveryPoint | None:
    return s.get(RecoveryPoint, point_id)


def settle_capture(s: Session, point_id: str) -> None:
    """``ready`` when every part is ready; ``failed`` naming the parts that failed."""
    point = s.get(RecoveryPoint, point_id)
    if point is None or point.status != SnapshotStatus.CAPTURING:
        return
    failed = []
    for item in point.items:
        snap = s.get(Snapshot, item["snapshot_id"])
        if snap is None or snap.status != SnapshotStatus.READY:
            reason = "gone" if snap is None else (snap.error or str(snap.status))
            failed.append(f"{item['name']}: {reason}")
    point.status = SnapshotStatus.FAILED if failed else SnapshotStatus.READY
    point.error = "; ".join(failed) or None
    point.finished_at = datetime.now(UTC)


def capturing(s: Session) -> list[str]:
    """Points still ``capturing``: at start-up, the ones a crash cut off."""
    query = select(RecoveryPoint.id).where(RecoveryPoint.status == SnapshotStatus.CAPTURING)
    return list(s.scalars(query))


def restoring(s: Session) -> list[str]:
    """Points whose restore is still ``running``: at start-up, the ones a crash cut off."""
    query = select(RecoveryPoint.id).where(RecoveryPoint.restore_status == RestoreStatus.RUNNING)
    return list(s.scalars(query))


def begin_restore(
    s: Session, actor: Actor, point: RecoveryPoint, parts: list[dict[str, Any]]
) -> None:
    """Record an accepted restore of the whole point (its parts' rows exist already)."""
    point.restore_status = RestoreStatus.RUNNING
    point.restores = parts
    point.restore_error = None
    point.restored_at = None
    audit.record(
        s,
        actor,
        AuditAction.RECOVERY_POINT_RESTORE,
        "recovery_point",
        point.id,
        {"restores": [p["restore_id"] for p in parts]},
    )


def settle_restore(s: Session, point_id: str, cut_off: bool = False) -> None:
    """End a running restore of the point from its parts' rows: ``succeeded`` when every
    part succeeded; otherwise ``failed``, naming each part's outcome (a crash leaves
    each workload all old or all new: its own restore says which)."""
    point = s.get(RecoveryPoint, point_id)
    if point is None or point.restore_status != RestoreStatus.RUNNING:
        return
    outcomes = []
    ok = True
    for part in point.restores:
        row = s.get(Restore, part["restore_id"])
        status = "gone" if row is None else str(row.status)
        ok = ok and status == RestoreStatus.SUCCEEDED
        outcomes.append(f"{part['name']}: {status}")
    point.restore_status = RestoreStatus.SUCCEEDED if ok else RestoreStatus.FAILED
    prefix = "Moorage stopped during the restore; " if cut_off and not ok else ""
    point.restore_error = None if ok else prefix + "; ".join(outcomes)
    point.restored_at = datetime.now(UTC)


def fail_capturing(s: Session, point_id: str, reason: str) -> None:
    """Fail the point's parts still ``capturing`` (the group capture stopped before
    them); parts already ready or failed are kept as they are."""
    point = s.get(RecoveryPoint, point_id)
    if point is None:
        return
    for item in point.items:
        snap = s.get(Snapshot, item["snapshot_id"])
        if snap is not None and snap.status == SnapshotStatus.CAPTURING:
            captures.fail(s, snap.id, f"recovery point: {reason}")


def fail_part(s: Session, restore_id: str, reason: str) -> None:
    """A part that never ran (an earlier part failed): its row ends ``failed``, untouched."""
    restore_runs.refuse(s, restore_id, reason)
