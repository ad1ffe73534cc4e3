"""Workloads and their deployment history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Row

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
from moorage.api.schemas.output import read_as
from moorage.plugins.registry import Registry
from moorage.services import checkpoints, guard, removal, snapshots, workloads
from moorage.services.audit import AuditAction
from moorage.services.listing import Filter

router = APIRouter(prefix="/api/workloads", tags=["workloads"])

Slug = Annotated[str | None, Query(max_length=63)]


def workload_out(registry: Registry, r: Row[Any], *, last: bool = True) -> WorkloadOut:
    """A listed workload (``workloads.list_filtered``/``listed``) as clients see it: config
    secrets masked; ``last=False`` leaves its latest deployment out."""
    return WorkloadOut(
        id=r.id,
        ref_id=r.ref_id,
        name=r.name,
        kind=r.kind,
        project=r.project,
        stage=r.stage,
        config=workloads.shown_config(registry, r.kind, r.config),
        desired_state=r.desired_state,
        status=r.status,
        pending_changes=workloads.pending_changes(r),
        keep_last=r.keep_last,
        checkpoint=r.checkpoint,
        created_at=r.created_at,
        updated_at=r.updated_at,
        last_deployment=_last_of_row(r) if last else None,
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
    wanted = Filter(project=project, stage=stage, kind=kind)

    def render_row(row: Row[Any]) -> bytes:
        # The item as ``WorkloadList`` would write it (compact JSON, the same bytes).
        return workload_out(state.registry, row).model_dump_json().encode()

    body = state.list_cache.fresh(wanted)
    if body is None:
        body = await run_in_threadpool(state.list_cache.get, wanted, render_row)
    return Response(body, media_type="application/json")


@router.post("", status_code=201, responses=responses(409, 503))
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
    return workload_out(state.registry, workloads.listed(session, workload.id), last=False)


@router.get("/{workload_id}")
def get_workload(workload_id: str, actor: Viewer, session: DbSession, state: State) -> WorkloadOut:
    return workload_out(state.registry, workloads.listed(session, workload_id))


@router.patch("/{workload_id}", responses=responses(409, 503))
def update_workload(
    workload_id: str, body: WorkloadPatch, actor: Operator, session: DbSession, state: State
) -> WorkloadOut:
    with guard.change(
        session, state.deployer.locks, actor, AuditAction.WORKLOAD_UPDATE, workload_id
    ):
        workloads.update(
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
            snapshots.set_keep_last(session, actor, workload_id, body.keep_last)
            snapshots.prune(session, state.settings, workload_id)
        if body.checkpoint is not None:
            checkpoints.set_mode(session, actor, workload_id, body.checkpoint)
    return workload_out(state.registry, workloads.listed(session, workload_id), last=False)


@router.delete("/{workload_id}", status_code=204, responses=responses(409, 502, 503))
def delete_workload(
    workload_id: str,
    actor: Admin,
    session: DbSession,
    state: State,
    purge_snapshots: Annotated[
        bool, Query(description="Also delete the workload's snapshot archives")
    ] = False,
    purge_volumes: Annotated[
        bool, Query(description="Also delete the Docker volumes holding its data (Compose)")
    ] = False,
) -> None:
    """Tear the workload down (containers, compose project), then forget it. Moorage
    volumes stay on disk; a workload with snapshots is only deleted with
    ``purge_snapshots``, one whose Compose named volumes hold data only with
    ``purge_volumes`` (409 ``has_snapshots``, ``has_volumes``)."""
    removal.delete_workload(
        session,
        state.deployer.locks,
        actor,
        state.settings,
        workload_id,
        purge_snapshots=purge_snapshots,
        purge_volumes=purge_volumes,
        teardown=state.deployer.teardown,
    )


@router.get("/{workload_id}/deployments")
def list_deployments(
    workload_id: str,
    actor: Viewer,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeploymentList:
    rows = workloads.deployments(session, workload_id, limit=limit)
    return DeploymentList(
        items=[DeploymentOut.model_validate(d, context=read_as(actor)) for d in rows]
    )


@router.get("/{workload_id}/deployments/{deployment_id}")
def get_deployment(
    workload_id: str, deployment_id: str, actor: Viewer, session: DbSession
) -> DeploymentOut:
    row = workloads.deployment(session, workload_id, deployment_id)
    return DeploymentOut.model_validate(row, context=read_as(actor))
