"""Snapshots of a workload's volumes: capture, list, read, download, import, delete."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from moorage.api.deps import Admin, DbSession, Operator, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import CaptureIn, SnapshotList, SnapshotOut
from moorage.api.schemas.offsite import CopyOut
from moorage.api.schemas.output import read_as
from moorage.errors import ArchiveInvalid
from moorage.security.roles import Actor
from moorage.services import guard, offsite, snapshots, workloads
from moorage.services.audit import AuditAction
from moorage.snapshots.incoming import IncomingArchive

router = APIRouter(prefix="/api/workloads/{workload_id}/snapshots", tags=["snapshots"])
IMPORT_PATH = re.compile(r"/api/workloads/[^/]+/snapshots/import")
"""The one path whose body is streamed (``api/limits.BodyLimit`` leaves it alone)."""
CHUNK = 1024 * 1024


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
    return SnapshotOut.model_validate(snap, context=read_as(actor))


def shown(session: DbSession, rows: list[Any], actor: Actor) -> list[SnapshotOut]:
    """Snapshots as ``actor`` reads them, each with its off-site copies."""
    copies = offsite.copies_of(session, [r.id for r in rows])
    return [
        SnapshotOut.model_validate(r, context=read_as(actor)).model_copy(
            update={"copies": [CopyOut.model_validate(c) for c in copies[r.id]]}
        )
        for r in rows
    ]


@router.get("")
def list_snapshots(workload_id: str, actor: Viewer, session: DbSession) -> SnapshotList:
    return SnapshotList(items=shown(session, snapshots.list_for(session, workload_id), actor))


@router.get("/{snapshot_id}")
def get_snapshot(
    workload_id: str, snapshot_id: str, actor: Viewer, session: DbSession
) -> SnapshotOut:
    return shown(session, [snapshots.get(session, workload_id, snapshot_id)], actor)[0]


@router.get("/{snapshot_id}/archive", response_class=FileResponse, responses=responses(403))
def download(
    workload_id: str, snapshot_id: str, actor: Operator, session: DbSession, state: State
) -> FileResponse:
    """The archive, streamed, with its size and SHA-256 in the headers; 403 ``needs_admin``
    for an operator when it holds a host directory's files, or the volumes of a workload
    that holds host powers (``services.snapshots.check_reader``)."""
    path, sha256 = snapshots.ready_archive(session, state.settings, actor, workload_id, snapshot_id)
    return FileResponse(
        path,
        media_type="application/zstd",
        filename=f"{snapshot_id}.tar.zst",
        headers={"X-Moorage-SHA256": sha256, "ETag": f'"{sha256}"'},
    )


@router.post("/import", status_code=201, responses=responses(400, 409, 413))
async def import_archive(
    workload_id: str, request: Request, actor: Admin, session: DbSession, state: State
) -> SnapshotOut:
    """Upload an archive (the body itself, or a multipart ``file`` field). Untrusted: it is
    read in full before it becomes ``ready``; a bad one is 422 and leaves nothing behind."""
    await run_in_threadpool(workloads.get, session, workload_id)
    with IncomingArchive(state.settings, workload_id) as incoming:
        async for chunk in _body(request):
            incoming.write(chunk)
        snapshot_id = await run_in_threadpool(incoming.keep, session, state.deployer.locks, actor)
    snap = await run_in_threadpool(snapshots.get, session, workload_id, snapshot_id)
    return SnapshotOut.model_validate(snap, context=read_as(actor))


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
