"""Snapshot rows: queue a capture, list, read, delete, retention. Files are the
``snapshots`` package's business; this module only decides and records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, NotFound
from moorage.names import new_id
from moorage.plugins.registry import Registry
from moorage.plugins.spec import HostPower
from moorage.security.roles import Actor
from moorage.services import audit, powers
from moorage.services import volumes as volume_service
from moorage.services.audit import AuditAction
from moorage.services.workloads import get as get_workload
from moorage.services.workloads import history
from moorage.settings import Settings
from moorage.store.states import (
    RETENTION_GROUPS,
    CaptureMode,
    RestoreStatus,
    SnapshotOrigin,
    SnapshotStatus,
)
from moorage.store.tables import Project, Restore, Snapshot, Workload, utcnow


def archive_path_for(settings: Settings, workload_id: str, snapshot_id: str) -> Path:
    return settings.snapshots_dir / workload_id / f"{snapshot_id}.tar.zst"


def archive_path(settings: Settings, snapshot: Snapshot) -> Path:
    return archive_path_for(settings, snapshot.workload_id, snapshot.id)


def ready_archive(
    session: Session, settings: Settings, actor: Actor, workload_id: str, snapshot_id: str
) -> tuple[Path, str]:
    """The archive of a ``ready`` snapshot and its SHA-256, for ``actor`` to download.
    ``NotFound`` for no such snapshot; ``NotFound`` ``not_ready`` while it is captured,
    when it failed, or when its file is gone; ``Forbidden`` ``needs_admin`` when only an
    admin may read it (``check_reader``)."""
    snapshot = get(session, workload_id, snapshot_id)
    check_reader(session, actor, snapshot)
    path = archive_path(settings, snapshot)
    if snapshot.status != SnapshotStatus.READY or not path.exists():
        raise NotFound(
            f"snapshot {snapshot_id} has no archive to download ({snapshot.status})",
            code="not_ready",
        )
    return path, snapshot.sha256


def check_reader(session: Session, actor: Actor, snapshot: Snapshot) -> None:
    """Raise 403 ``needs_admin`` when ``actor`` is not an admin and the archive holds what
    only an admin may read: a volume that was ``absolute`` when captured (a host directory
    an admin chose, SPEC section 9, read at its host path), or any volume of a workload
    that holds host powers or an ``absolute`` volume now (``powers.guarded``: what runs in
    it is the admin's, so an operator cannot read its volumes through a container of
    their own making). An operator may still capture such a workload, copy it off-site to
    an admin's target, and see its manifest: the data stays where only an admin reads it."""
    if actor.can("admin"):
        return
    found = powers.guarded(session, get_workload(session, snapshot.workload_id))
    named = {p.where for p in found}  # an absolute volume the workload still has is named
    found += [p for p in captured_absolute(snapshot) if p.where not in named]
    if found:
        raise powers.needs_admin(found, "download a snapshot of a workload")


def captured_absolute(snapshot: Snapshot) -> list[HostPower]:
    """The volumes of ``snapshot`` that were ``absolute`` when it was captured (host
    directories an admin chose), as the power ``absolute_volume``: only an admin reads
    their data, whatever the workload's volumes are now (``check_reader``; a drill,
    ``services.drills.request``)."""
    return [
        HostPower("absolute_volume", str(v.get("name")), f"host path {v.get('source')!r}")
        for v in snapshot.manifest.get("volumes", [])
        if v.get("scope") == "absolute"
    ]


def get(session: Session, workload_id: str, snapshot_id: str) -> Snapshot:
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None or snapshot.workload_id != workload_id:
        raise NotFound(f"no snapshot {snapshot_id!r} of workload {workload_id!r}")
    return snapshot


def list_for(session: Session, workload_id: str) -> list[Snapshot]:
    """The workload's snapshots, newest first; ``NotFound`` for no such workload."""
    return history(session, Snapshot, workload_id)


def restores_of(session: Session, workload_id: str) -> list[Restore]:
    """The workload's restores, newest first; ``NotFound`` for no such workload."""
    return history(session, Restore, workload_id)


def request_capture(
    session: Session,
    actor: Actor,
    registry: Registry,
    workload_id: str,
    *,
    volumes: list[str] | None,
    mode: str,
    origin: SnapshotOrigin = SnapshotOrigin.MANUAL,
    audited: bool = True,
) -> Snapshot:
    """Check the request and record a ``capturing`` snapshot; the caller starts the work.
    With ``audited`` False no ``snapshot.capture`` row is written: the caller's own row
    covers the capture (a recovery point's one row names every snapshot, SPEC section 9)."""
    workload = get_workload(session, workload_id)
    if not registry.source(workload.kind).supports_volumes:
        raise _volumes_unsupported(workload)
    try:
        held = CaptureMode(mode)
    except ValueError:
        raise InvalidInput(
            f"mode must be one of {', '.join(CaptureMode)}", code="invalid_mode"
        ) from None
    known = [v.name for v in volume_service.read(session, workload_id)]
    if not known:
        raise _no_volumes(session, registry, workload)
    wanted = known if volumes is None else volumes
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted or len(set(wanted)) != len(wanted):
        raise InvalidInput(
            f"volumes must be distinct names among {', '.join(known)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
            code="unknown_volume",
        )
    snapshot = Snapshot(
        id=new_id("sn"),
        workload_id=workload_id,
        origin=origin,
        mode=held,
        status=SnapshotStatus.CAPTURING,
        volumes=[n for n in known if n in wanted],
    )
    session.add(snapshot)
    session.flush()
    if not audited:
        return snapshot
    audit.record(
        session,
        actor,
        AuditAction.SNAPSHOT_CAPTURE,
        "workload",
        workload_id,
        {"snapshot": snapshot.id, "mode": mode, "volumes": snapshot.volumes},
    )
    return snapshot


def nothing_to_capture(
    session: Session, registry: Registry, workload: Workload
) -> InvalidInput | None:
    """Why a capture of every volume of ``workload`` would hold nothing (its kind has no
    volumes, it has none), as the error ``request_capture`` raises; None when it has
    volumes. A recovery point skips such a workload with this reason."""
    if not registry.source(workload.kind).supports_volumes:
        return _volumes_unsupported(workload)
    if volume_service.read(session, workload.id):
        return None
    return _no_volumes(session, registry, workload)


def _volumes_unsupported(workload: Workload) -> InvalidInput:
    return InvalidInput(
        f"a {workload.kind} workload has no Moorage volumes to snapshot",
        code="volumes_unsupported",
    )


def _no_volumes(session: Session, registry: Registry, workload: Workload) -> InvalidInput:
    """422 ``no_volumes``. A stack whose file declares named volumes is told that Docker
    keeps those and no snapshot captures them, and how one becomes a Moorage volume:
    otherwise a newcomer reads "no volumes" of a stack whose data sits in volumes."""
    message = "the workload has no volumes to snapshot"
    named = volume_service.uncovered(session, registry, workload.id)
    if not named:
        return InvalidInput(message, code="no_volumes")
    seen = ", ".join(f"{v.name} ({', '.join(v.services) or 'no service'})" for v in named)
    first = named[0]
    service = first.services[0] if first.services else "SERVICE"
    slug = session.scalar(select(Project.slug).where(Project.id == workload.project_id))
    ref = f"{slug}/{workload.stage}/{workload.name}"
    return InvalidInput(
        f"{message}: Compose named volumes are Docker's and are not captured (this file "
        f"has {seen}); to capture one, make it a Moorage volume bound where its service "
        f"mounts it: moorage apps volumes set {ref} "
        f"{first.name}:stage:{workload.name}/{first.name}:/TARGET:service={service}",
        code="no_volumes",
    )


def record_import(
    session: Session,
    actor: Actor,
    workload_id: str,
    snapshot_id: str,
    *,
    manifest: dict[str, Any],
    size: int,
    sha256: str,
) -> Snapshot:
    """Record an uploaded archive, already verified and in place at ``archive_path_for``,
    as a ``ready`` import (never pruned) with its ``snapshot.import`` audit row.
    ``NotFound`` when the workload is gone (deleted while the archive came in)."""
    get_workload(session, workload_id)
    snapshot = Snapshot(
        id=snapshot_id,
        workload_id=workload_id,
        origin=SnapshotOrigin.IMPORT,
        mode="",
        status=SnapshotStatus.READY,
        volumes=[v["name"] for v in manifest["volumes"]],
        manifest=manifest,
        size=size,
        sha256=sha256,
        progress_bytes=size,
        total_bytes=size,
        finished_at=utcnow(),
    )
    session.add(snapshot)
    audit.record(
        session,
        actor,
        AuditAction.SNAPSHOT_IMPORT,
        "workload",
        workload_id,
        {"snapshot": snapshot_id, "size": size},
    )
    return snapshot


def check_deletable(session: Session, workload_id: str, snapshot_id: str) -> Snapshot:
    """404 for no such snapshot; 409 ``snapshot_busy`` while it is captured, 409
    ``restore_running`` while a restore reads it. The route asks before it waits for the
    workload's lock (which a capture holds), so the refusal comes at once; ``delete``
    asks again under it."""
    snapshot = get(session, workload_id, snapshot_id)
    if snapshot.status == SnapshotStatus.CAPTURING:
        raise Conflict(
            f"snapshot {snapshot_id} is still being captured; delete it once it is ready or failed",
            code="snapshot_busy",
        )
    reading = session.scalar(
        select(Restore.id).where(
            Restore.snapshot_id == snapshot_id, Restore.status == RestoreStatus.RUNNING
        )
    )
    if reading is not None:
        raise Conflict(
            f"restore {reading} is reading this snapshot; delete it after the restore ends",
            code="restore_running",
        )
    return snapshot


def delete(
    session: Session, actor: Actor, settings: Settings, workload_id: str, snapshot_id: str
) -> None:
    snapshot = check_deletable(session, workload_id, snapshot_id)
    archive_path(settings, snapshot).unlink(missing_ok=True)
    session.delete(snapshot)
    audit.record(
        session,
        actor,
        AuditAction.SNAPSHOT_DELETE,
        "workload",
        workload_id,
        {"snapshot": snapshot_id},
    )


def set_keep_last(
    session: Session, actor: Actor, workload_id: str, keep_last: int | None
) -> Workload:
    workload = get_workload(session, workload_id)
    if keep_last is not None and not 1 <= keep_last <= 10000:
        raise InvalidInput("keep_last must be between 1 and 10000", code="invalid_retention")
    workload.keep_last = keep_last
    audit.record(
        session,
        actor,
        AuditAction.WORKLOAD_RETENTION,
        "workload",
        workload_id,
        {"keep_last": keep_last},
    )
    return workload


def prune(session: Session, settings: Settings, workload_id: str) -> list[str]:
    """Apply ``keep_last`` to captured snapshots, to captures (manual and scheduled) and
    to deploy checkpoints each on their own (``RETENTION_GROUPS``); return the ids
    removed."""
    workload = session.get(Workload, workload_id)
    if workload is None or workload.keep_last is None:
        return []
    removed = []
    for group in RETENTION_GROUPS:
        ready = list(
            session.scalars(
                select(Snapshot)
                .where(
                    Snapshot.workload_id == workload_id,
                    Snapshot.status == SnapshotStatus.READY,
                    Snapshot.origin.in_(group),
                )
                .order_by(Snapshot.created_at.desc(), Snapshot.id.desc())
            )
        )
        for old in ready[workload.keep_last :]:
            archive_path(settings, old).unlink(missing_ok=True)
            session.delete(old)
            removed.append(old.id)
    if removed:
        from moorage.security.roles import SYSTEM

        audit.record(
            session,
            SYSTEM,
            AuditAction.SNAPSHOT_PRUNE,
            "workload",
            workload_id,
            {"removed": removed, "keep_last": workload.keep_last},
        )
    return removed


def finish(
    session: Session,
    snapshot: Snapshot,
    *,
    status: SnapshotStatus,
    error: str | None = None,
) -> None:
    snapshot.status = status
    snapshot.error = error
    snapshot.finished_at = utcnow()
