"""A workload's volumes; the host path each one maps to is shown, never taken from clients."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from moorage.api.deps import DbSession, Operator, State
from moorage.api.schemas import VolumeIn, VolumeOut
from moorage.services import volumes, workloads
from moorage.services.volumes import VolumeSpec
from moorage.settings import Settings
from moorage.volumes.paths import host_path

router = APIRouter(prefix="/api/workloads/{workload_id}/volumes", tags=["volumes"])


def _out(
    session: Session, settings: Settings, workload_id: str, specs: list[VolumeSpec]
) -> list[VolumeOut]:
    workload = workloads.get(session, workload_id)
    project = workloads.project_slug(session, workload)
    shown = []
    for spec in specs:
        path = host_path(
            data_dir=settings.data_dir,
            volume_roots=settings.volume_roots,
            project=project,
            stage=workload.stage,
            scope=spec.scope,
            source=spec.source,
        )
        shown.append(VolumeOut(host_path=str(path), **spec.as_dict()))
    return shown


@router.get("")
def read_volumes(
    workload_id: str, actor: Operator, session: DbSession, state: State
) -> list[VolumeOut]:
    return _out(session, state.settings, workload_id, volumes.read(session, workload_id))


@router.put("")
def replace_volumes(
    workload_id: str, body: list[VolumeIn], actor: Operator, session: DbSession, state: State
) -> list[VolumeOut]:
    wanted = [VolumeSpec(**v.model_dump()) for v in body]
    specs = volumes.replace(session, actor, state.settings, workload_id, wanted)
    return _out(session, state.settings, workload_id, specs)
