"""Snapshots of a workload's volumes: capture, list, read, download, import, delete."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from moorage.api.deps import Admin, DbSession, Operator, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import CaptureIn, SnapshotList, SnapshotOut
from moorage.errors import ArchiveInvalid, InvalidInput, NotFound, PayloadTooLarge
from moorage.names import new_id
from moorage.services import audit, guard, snapshots, workloads
from moorage.services.audit import AuditAction
from moorage.snapshots.archive import Limits, read_archive
from moorage.store.states import SnapshotOrigin, SnapshotStatus
from moorage.store.tables import Snapshot, utcnow

router = APIRouter(prefix="/api/workloads/{workload_id}/snapshots", tags=["snapshots"])
IMPORT_SUFFIX = "/snapshots/import"
CHUNK = 1024 * 1024


def snapshot_out(s: Snapshot) -> SnapshotOut:
    manifest: dict[str, Any] = s.manifest or {}
    return SnapshotOut(
        id=s.id,
        workload_id=s.workload_id,
        origin=s.origin,
        mode=s.mode,
        status=s.status,
        volumes=list(s.volumes),
        size=s.size,
        sha256=s.sha256,
        progress_bytes=s.progress_bytes,
        total_bytes=s.total_bytes,
        error=s.error,
        warnings=list(s.warnings),
        manifest={
            "format": manifest.get("format"),
            "workload": manifest.get("workload"),
            "created_at": manifest.get("created_at"),
            "volumes": manifest.get("volumes", []),
        },
        created_at=s.created_at,
        finished_at=s.finished_at,
    )


@router.post("", status_code=202, responses=responses(409))
def capture(
    workload_id: str, body: CaptureIn, actor: Operator, session: DbSession, state: State
) -> SnapshotOut:
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.SNAPSHOT_CAPTURE, workload_id
    ):
        snap = snapshots.request_capture(
            session, actor, state.registry, workload_id, volumes=body.volumes, mode=body.mode
        )
    state.snapshotter.start(snap.id)  # waits for the lock, which the change has let go
    return snapshot_out(snap)


@router.get("")
def list_snapshots(workload_id: str, actor: Viewer, session: DbSession) -> SnapshotList:
    return SnapshotList(items=[snapshot_out(s) for s in snapshots.list_for(session, workload_id)])


@router.get("/{snapshot_id}")
def get_snapshot(
    workload_id: str, snapshot_id: str, actor: Viewer, session: DbSession
) -> SnapshotOut:
    return snapshot_out(snapshots.get(session, workload_id, snapshot_id))


@router.get("/{snapshot_id}/archive", response_class=FileResponse)
def download(
    workload_id: str, snapshot_id: str, actor: Operator, session: DbSession, state: State
) -> FileResponse:
    """The archive, streamed, with its size and SHA-256 in the headers."""
    snap = snapshots.get(session, workload_id, snapshot_id)
    path = snapshots.archive_path(state.settings, snap)
    if snap.status != SnapshotStatus.READY or not path.exists():
        raise NotFound(
            f"snapshot {snapshot_id} has no archive to download ({snap.status})", code="not_ready"
        )
    return FileResponse(
        path,
        media_type="application/zstd",
        filename=f"{snapshot_id}.tar.zst",
        headers={"X-Moorage-SHA256": snap.sha256, "ETag": f'"{snap.sha256}"'},
    )


@router.post("/import", status_code=201, responses=responses(400, 409, 413))
async def import_archive(
    workload_id: str, request: Request, actor: Admin, session: DbSession, state: State
) -> SnapshotOut:
    """Upload an archive (the body itself, or a multipart ``file`` field). Untrusted: it is
    read in full before it becomes ``ready``; a bad one is 422 and leaves nothing behind."""
    await run_in_threadpool(workloads.get, session, workload_id)
    snapshot_id = new_id("sn")
    dest = snapshots.archive_path_for(state.settings, workload_id, snapshot_id)
    partial = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    cap = state.settings.snapshot_max_bytes
    digest = hashlib.sha256()
    size = 0
    try:
        with open(partial, "wb") as out:
            async for chunk in _body(request):
                size += len(chunk)
                if size > cap:
                    raise PayloadTooLarge(f"the archive is larger than {cap} bytes")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise InvalidInput("the request carried no archive", code="invalid_archive")

        def verify() -> dict[str, Any]:
            with open(partial, "rb") as src:
                return read_archive(src, limits=Limits(max_bytes=cap))

        manifest = await run_in_threadpool(verify)
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise

    def record() -> Snapshot:
        with guard.change(
            session, state.deployer.locks, actor, AuditAction.SNAPSHOT_IMPORT, workload_id
        ):
            workloads.get(session, workload_id)  # not deleted while the archive came in
            snap = Snapshot(
                id=snapshot_id,
                workload_id=workload_id,
                origin=SnapshotOrigin.IMPORT,
                mode="",
                status=SnapshotStatus.READY,
                volumes=[v["name"] for v in manifest["volumes"]],
                manifest=manifest,
                size=size,
                sha256=digest.hexdigest(),
                progress_bytes=size,
                total_bytes=size,
                finished_at=utcnow(),
            )
            session.add(snap)
            audit.record(
                session,
                actor,
                AuditAction.SNAPSHOT_IMPORT,
                "workload",
                workload_id,
                {"snapshot": snapshot_id, "size": size},
            )
        return snap

    try:
        snap = await run_in_threadpool(record)
    except BaseException:
        dest.unlink(missing_ok=True)  # no row came of it
        raise
    return snapshot_out(snap)


async def _body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=1)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ArchiveInvalid("the multipart form needs a 'file' field with the archive")
        while chunk := await upload.read(CHUNK):
            yield chunk
        return
    async for chunk in request.stream():
        if chunk:
            yield chunk


@router.delete("/{snapshot_id}", status_code=204, responses=responses(409))
def delete_snapshot(
    workload_id: str, snapshot_id: str, actor: Admin, session: DbSession, state: State
) -> None:
    snapshots.check_deletable(session, workload_id, snapshot_id)  # at once, not after a capture
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.SNAPSHOT_DELETE, workload_id
    ):
        snapshots.delete(session, actor, state.settings, workload_id, snapshot_id)
