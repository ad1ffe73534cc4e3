"""Workloads and their deployment history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from moorage.api.deps import Admin, DbSession, Operator, State, Viewer
from moorage.api.errors import responses
from moorage.api.schemas import (
    DeploymentList,
    DeploymentOut,
    LastDeployment,
    WorkloadIn,
    WorkloadList,
    WorkloadOut,
    WorkloadPatch,
)
from moorage.errors import Conflict, NotFound
from moorage.plugins.registry import Registry
from moorage.services import guard, snapshots, workloads
from moorage.services.audit import AuditAction
from moorage.store.tables import Deployment, Workload

router = APIRouter(prefix="/api/workloads", tags=["workloads"])

Slug = Annotated[str | None, Query(max_length=63)]


def workload_out(
    registry: Registry, w: Workload | Row[Any], project: str, last: LastDeployment | None = None
) -> WorkloadOut:
    return WorkloadOut(
        id=w.id,
        ref_id=w.ref_id,
        name=w.name,
        kind=w.kind,
        project=project,
        stage=w.stage,
        config=workloads.shown_config(registry, w.kind, w.config),
        desired_state=w.desired_state,
        status=w.status,
        pending_changes=workloads.pending_changes(w),
        keep_last=w.keep_last,
        created_at=w.created_at,
        updated_at=w.updated_at,
        last_deployment=last,
    )


def _last_of_row(r: Row[Any]) -> LastDeployment | None:
    if r.last_id is None:
        return None
    return LastDeployment(
        id=r.last_id,
        status=r.last_status,
        created_at=r.last_created_at,
        finished_at=r.last_finished_at,
    )


def _last_of(session: Session, workload_id: str) -> LastDeployment | None:
    d = workloads.last_deployment(session, workload_id)
    return None if d is None else LastDeployment.model_validate(d)


def deployment_out(d: Deployment) -> DeploymentOut:
    return DeploymentOut.model_validate(d)


@router.get("", response_model=WorkloadList)
async def list_workloads(
    actor: Viewer,
    state: State,
    project: Slug = None,
    stage: Slug = None,
    kind: Slug = None,
) -> Response:
    """The hottest read of the UI: rendered once per change of the store (see
    ``api/cache.py``); a current rendering is sent without a worker thread."""
    key = (project, stage, kind)

    def render() -> bytes:  # in a worker thread, in a session of its own
        with state.db.session() as session:
            rows = workloads.list_filtered(session, project=project, stage=stage, kind=kind)
        listing = WorkloadList(
            items=[workload_out(state.registry, r, r.project, _last_of_row(r)) for r in rows]
        )
        return listing.model_dump_json().encode()

    body = state.list_cache.fresh(key)
    if body is None:
        body = await run_in_threadpool(state.list_cache.get, key, render)
    return Response(body, media_type="application/json")


@router.post("", status_code=201, responses=responses(409))
def create_workload(
    body: WorkloadIn, actor: Operator, session: DbSession, state: State
) -> WorkloadOut:
    with guard.change(session, state.deployer.locks, actor, AuditAction.WORKLOAD_CREATE, None):
        workload = workloads.create(
            session,
            actor,
            state.registry,
            state.settings,
            name=body.name,
            kind=body.kind,
            project=body.project,
            stage=body.stage,
            config=body.config,
            ref_id=body.ref_id,
        )
    return workload_out(state.registry, workload, body.project)


@router.get("/{workload_id}")
def get_workload(workload_id: str, actor: Viewer, session: DbSession, state: State) -> WorkloadOut:
    workload = workloads.get(session, workload_id)
    project = workloads.project_slug(session, workload)
    return workload_out(state.registry, workload, project, _last_of(session, workload.id))


@router.patch("/{workload_id}", responses=responses(409))
def update_workload(
    workload_id: str, body: WorkloadPatch, actor: Operator, session: DbSession, state: State
) -> WorkloadOut:
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.WORKLOAD_UPDATE, workload_id
    ):
        workload = workloads.update(
            session,
            actor,
            state.registry,
            state.settings,
            workload_id,
            name=body.name,
            config=body.config,
            ref_id=body.ref_id,
        )
        if "keep_last" in body.model_fields_set:
            workload = snapshots.set_keep_last(session, actor, workload_id, body.keep_last)
            snapshots.prune(session, state.settings, workload_id)
    return workload_out(state.registry, workload, workloads.project_slug(session, workload))


@router.delete("/{workload_id}", status_code=204, responses=responses(409, 502, 503))
def delete_workload(
    workload_id: str,
    actor: Admin,
    session: DbSession,
    state: State,
    purge_snapshots: Annotated[
        bool, Query(description="Also delete the workload's snapshot archives")
    ] = False,
) -> None:
    """Tear the workload down (containers, compose project), then forget it. Volume data
    stays on disk; a workload with snapshots is only deleted with ``purge_snapshots``."""
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.WORKLOAD_DELETE, workload_id
    ):
        kept = snapshots.list_for(session, workload_id)
        if kept and not purge_snapshots:
            raise Conflict(
                f"the workload has {len(kept)} snapshot(s); delete them first or pass "
                "purge_snapshots=true",
                code="has_snapshots",
            )
        archives = [snapshots.archive_path(state.settings, snap) for snap in kept]
        state.deployer.teardown(workload_id)  # before the rows change: it reads them
        workloads.delete(session, actor, workload_id)
    # Only once the rows are gone: a failed teardown must not leave rows without files.
    for path in archives:
        path.unlink(missing_ok=True)


@router.get("/{workload_id}/deployments")
def list_deployments(
    workload_id: str,
    actor: Viewer,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeploymentList:
    workloads.get(session, workload_id)
    rows = session.scalars(
        select(Deployment)
        .where(Deployment.workload_id == workload_id)
        .order_by(Deployment.created_at.desc())
        .limit(limit)
    )
    return DeploymentList(items=[deployment_out(d) for d in rows])


@router.get("/{workload_id}/deployments/{deployment_id}")
def get_deployment(
    workload_id: str, deployment_id: str, actor: Viewer, session: DbSession
) -> DeploymentOut:
    deployment = session.get(Deployment, deployment_id)
    if deployment is None or deployment.workload_id != workload_id:
        raise NotFound(f"no deployment {deployment_id!r} of workload {workload_id!r}")
    return deployment_out(deployment)
