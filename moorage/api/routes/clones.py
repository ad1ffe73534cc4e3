"""Restore into a new workload: ``POST .../snapshots/{sid}/clone`` (SPEC section 10)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks

from moorage.api.deps import DbSession, Operator, State
from moorage.api.errors import responses
from moorage.api.routes.workloads import workload_out
from moorage.api.schemas import CloneIn, WorkloadOut
from moorage.services import workloads

router = APIRouter(prefix="/api/workloads/{workload_id}/snapshots", tags=["snapshots"])


@router.post("/{snapshot_id}/clone", status_code=201, responses=responses(403, 409, 503))
def clone(
    workload_id: str,
    snapshot_id: str,
    body: CloneIn,
    actor: Operator,
    session: DbSession,
    state: State,
    tasks: BackgroundTasks,
) -> WorkloadOut:
    """A new workload (same kind, config, env, volumes re-based to it) holding the
    snapshot's data; the source is only read. A source that needs host powers needs an
    admin (403 ``needs_admin``)."""
    clone_id = state.cloner.clone(
        session,
        actor,
        workload_id,
        snapshot_id,
        name=body.name,
        stage=body.stage,
        deploy=body.deploy,
    )
    if body.deploy:
        tasks.add_task(state.deployer.wake)
    return workload_out(state.registry, workloads.listed(session, clone_id), last=False)
