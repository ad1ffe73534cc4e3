"""Restores: the confirmed, admin-only restore of a snapshot, and the restores of a workload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from moorage.api.deps import Admin, DbSession, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import RestoreIn, RestoreList, RestoreOut
from moorage.api.schemas.output import read_as
from moorage.errors import PreconditionRequired
from moorage.services import guard, snapshots, workloads
from moorage.services.audit import AuditAction

router = APIRouter(prefix="/api/workloads/{workload_id}", tags=["restores"])
CONFIRM = "X-Confirm-Restore"


@router.post("/snapshots/{snapshot_id}/restore", status_code=202, responses=responses(409, 428))
def restore(
    workload_id: str,
    snapshot_id: str,
    actor: Admin,
    session: DbSession,
    state: State,
    body: RestoreIn | None = None,
    confirm: Annotated[str | None, Header(alias=CONFIRM)] = None,
) -> RestoreOut:
    """Put a snapshot back onto the live volumes. Destructive: the header
    ``X-Confirm-Restore`` must carry the workload's name. The replaced data is kept
    as a pre-restore snapshot."""
    workload = workloads.get(session, workload_id)
    if confirm != workload.name:
        said = "is missing" if confirm is None else f"says {confirm!r}"
        raise PreconditionRequired(
            f"a restore replaces the live data of {workload.name!r}: send the header "
            f"'{CONFIRM}: {workload.name}' to confirm (it {said})",
            code="confirmation_required",
        )
    engine = state.restorer
    engine.check_free(session, workload_id)  # at once, not after the running one's lock
    volumes = body.volumes if body is not None else None
    accepted = False
    try:
        with guard.change(
            session, state.deployer.locks, actor, AuditAction.SNAPSHOT_RESTORE, workload_id
        ):
            row = engine.request(session, actor, workload_id, snapshot_id, volumes)
            accepted = True
    except BaseException:
        if accepted:  # accepted, but never committed: let another request in
            engine.forget(workload_id)
        raise
    engine.start(row.id)  # runs under the lock, once the change has let it go
    return RestoreOut.model_validate(row, context=read_as(actor))


@router.get("/restores")
def list_restores(workload_id: str, actor: Viewer, session: DbSession) -> RestoreList:
    rows = snapshots.restores_of(session, workload_id)
    return RestoreList(items=[RestoreOut.model_validate(r, context=read_as(actor)) for r in rows])


@router.get("/restores/{restore_id}")
def get_restore(
    workload_id: str, restore_id: str, actor: Viewer, session: DbSession, state: State
) -> RestoreOut:
    row = state.restorer.get(session, workload_id, restore_id)
    return RestoreOut.model_validate(row, context=read_as(actor))
