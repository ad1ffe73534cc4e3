"""Storage targets (admin): where off-site copies go (SPEC section 11)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from moorage.api.deps import Admin, DbSession, State
from moorage.api.errors import responses
from moorage.api.schemas import SnapshotOut
from moorage.api.schemas.output import read_as
from moorage.api.schemas.storage import (
    CatalogEntry,
    CatalogList,
    ProbeError,
    ProbeStep,
    StorageTargetIn,
    StorageTargetList,
    StorageTargetOut,
    StorageTargetPatch,
    StorageTargetProbe,
)
from moorage.offsite import catalog
from moorage.services import snapshots, storage_targets

router = APIRouter(prefix="/api/storage-targets", tags=["storage targets"])


def target_out(t: storage_targets.Shown) -> StorageTargetOut:
    return StorageTargetOut(
        id=t.id,
        name=t.name,
        kind=t.kind,
        config=t.config,
        recipient=t.recipient,
        last_test_at=t.last_test_at,
        last_test_error=t.last_test_error,
        created_at=t.created_at,
        updated_at=t.updated_at,
    )


@router.get("")
def list_targets(_actor: Admin, session: DbSession, state: State) -> StorageTargetList:
    return StorageTargetList(
        items=[
            target_out(storage_targets.shown(state.registry, state.settings, t))
            for t in storage_targets.list_all(session)
        ]
    )


@router.post("", status_code=201, responses=responses(409, 502))
def create_target(
    body: StorageTargetIn, actor: Admin, session: DbSession, state: State
) -> StorageTargetOut:
    """Connect to the target, leave (or adopt) its key there, and keep it. 502 when the
    target cannot be reached or written, naming what to fix."""
    target = storage_targets.create(
        session,
        actor,
        state.registry,
        state.settings,
        name=body.name,
        kind=body.kind,
        config=body.config,
        passphrase=body.passphrase,
    )
    return target_out(storage_targets.shown(state.registry, state.settings, target))


@router.get("/{target_id}")
def get_target(target_id: str, _actor: Admin, session: DbSession, state: State) -> StorageTargetOut:
    target = storage_targets.get(session, target_id)
    return target_out(storage_targets.shown(state.registry, state.settings, target))


@router.patch("/{target_id}", responses=responses(409))
def update_target(
    target_id: str, body: StorageTargetPatch, actor: Admin, session: DbSession, state: State
) -> StorageTargetOut:
    target = storage_targets.update(
        session,
        actor,
        state.registry,
        state.settings,
        target_id,
        name=body.name,
        config_patch=body.config,
    )
    return target_out(storage_targets.shown(state.registry, state.settings, target))


@router.delete("/{target_id}", status_code=204)
def delete_target(target_id: str, actor: Admin, session: DbSession) -> Response:
    storage_targets.delete(session, actor, target_id)
    return Response(status_code=204)


@router.post("/{target_id}/test")
def test_target(
    target_id: str, actor: Admin, session: DbSession, state: State
) -> StorageTargetProbe:
    """Write an encrypted probe, read it back, compare and delete it. A failing target
    is ``ok: false`` with the error's code and message (and kept on the target)."""
    result = storage_targets.probe(session, actor, state.registry, state.settings, target_id)
    return StorageTargetProbe(
        ok=result.ok,
        steps=[ProbeStep(**s) for s in result.steps],
        error=None if result.error is None else ProbeError(**result.error),
    )


@router.get("/{target_id}/catalog", responses=responses(502))
def list_catalog(target_id: str, _actor: Admin, session: DbSession, state: State) -> CatalogList:
    """The copies the target holds, newest first, each with its workload, snapshot, size,
    capture time and SHA-256 (read from the copy's encrypted metadata object)."""
    entries = catalog.catalog(session, state.settings, state.registry, target_id)
    return CatalogList(items=[CatalogEntry(**vars(e)) for e in entries])


@router.post(
    "/{target_id}/catalog/{key:path}/import",
    status_code=201,
    responses=responses(409, 413, 502),
)
def import_copy(
    target_id: str, key: str, actor: Admin, session: DbSession, state: State
) -> SnapshotOut:
    """Bring one copy back as a ready ``import`` snapshot of its workload (a new id): it is
    decrypted, checked against its metadata's size and SHA-256, and read in full by the
    untrusted archive reader before it is kept. 409 ``workload_unknown`` when this
    instance does not have the copy's workload."""
    workload_id, snapshot_id = catalog.import_copy(
        session,
        state.settings,
        state.registry,
        state.deployer.locks,
        actor,
        target_id,
        key,
    )
    row = snapshots.get(session, workload_id, snapshot_id)
    return SnapshotOut.model_validate(row, context=read_as(actor))
