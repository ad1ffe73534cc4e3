"""Restores: the confirmed, admin-only restore of a snapshot, and the restores of a workload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from sqlalchemy import select

from moorage.api.deps import Admin, DbSession, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import RestoreIn, RestoreList, RestoreOut
from moorage.errors import PreconditionRequired
from moorage.services import guard, workloads
from moorage.services.audit import AuditAction
from moorage.store.tables import Restore

router = APIRouter(prefix="/api/workloads/{workload_id}", tags=["restores"])
CONFIRM = "X-Confirm-Restore"


def restore_out(r: Restore) -> RestoreOut:
    return RestoreOut.model_validate(r)


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
    row: Restore | None = None
    try:
        with guard.change(
            session, state.deployer.locks, actor, AuditAction.SNAPSHOT_RESTORE, workload_id
        ):
            row = engine.request(session, actor, workload_id, snapshot_id, volumes)
    except BaseException:
        if row is not None:  # accepted, but never committed: let another request in
            engine.forget(workload_id)
        raise
    engine.start(row.id)  # runs under the lock, once the change has let it go
    return restore_out(row)


@router.get("/restores")
def list_restores(workload_id: str, actor: Viewer, session: DbSession) -> RestoreList:
    workloads.get(session, workload_id)
    rows = session.scalars(
        select(Restore)
        .where(Restore.workload_id == workload_id)
        .order_by(Restore.created_at.desc())
    )
    return RestoreList(items=[restore_out(r) for r in rows])


@router.get("/restores/{restore_id}")
def get_restore(
    workload_id: str, restore_id: str, actor: Viewer, session: DbSession, state: State
) -> RestoreOut:
    return restore_out(state.restorer.get(session, workload_id, restore_id))
