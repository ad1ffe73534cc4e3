"""A workload's volumes; the host path each one maps to is shown, never taken from clients."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from moorage.api.deps import AppState, DbSession, Operator, State
from moorage.api.errors import responses
from moorage.api.schemas import VolumeIn, VolumeList, VolumeOut
from moorage.api.schemas.workloads import UncoveredVolumeOut
from moorage.errors import InvalidInput
from moorage.services import guard, volumes, workloads
from moorage.services.audit import AuditAction
from moorage.services.volumes import VolumeSpec

router = APIRouter(prefix="/api/workloads/{workload_id}/volumes", tags=["volumes"])


def _out(
    session: Session, state: AppState, workload_id: str, specs: list[VolumeSpec]
) -> VolumeList:
    settings = state.settings
    workload = workloads.get(session, workload_id)
    project = workloads.project_slug(session, workload)
    shown = []
    for spec in specs:
        try:
            path = volumes.path_of(settings, project, workload.stage, spec.scope, spec.source)
        except InvalidInput as exc:
            # e.g. MOORAGE_VOLUME_ROOTS changed since: show it, and say why it cannot mount.
            shown.append(VolumeOut(host_path=None, problem=exc.message, **spec.as_dict()))
            continue
        shown.append(VolumeOut(host_path=str(path), **spec.as_dict()))
    not_covered = [
        UncoveredVolumeOut(name=v.name, services=list(v.services))
        for v in volumes.uncovered(session, state.registry, workload_id)
    ]
    return VolumeList(items=shown, not_covered=not_covered)


@router.get("")
def read_volumes(workload_id: str, actor: Operator, session: DbSession, state: State) -> VolumeList:
    return _out(session, state, workload_id, volumes.read(session, workload_id))


@router.put("", responses=responses(409, 503))
def replace_volumes(
    workload_id: str, body: list[VolumeIn], actor: Operator, session: DbSession, state: State
) -> VolumeList:
    wanted = [VolumeSpec(**v.model_dump(exclude={"host_path", "problem"})) for v in body]
    locks = state.deployer.locks
    with guard.change(session, locks, actor, AuditAction.WORKLOAD_VOLUMES_REPLACE, workload_id):
        specs = volumes.replace(session, actor, state.settings, state.registry, workload_id, wanted)
    return _out(session, state, workload_id, specs)
