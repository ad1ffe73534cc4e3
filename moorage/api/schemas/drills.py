"""Restoring a snapshot elsewhere: into a new workload (clone) and into a sandbox (drill);
recovery points (a project stage at one instant)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from moorage.api.schemas.base import Body
from moorage.api.schemas.output import ProgramText
from moorage.store.states import (
    CaptureMode,
    DrillOrigin,
    DrillPhase,
    DrillStatus,
    RestoreStatus,
    SnapshotStatus,
)


class CloneIn(Body):
    name: str = Field(max_length=63, description="The new workload's name (a slug)")
    stage: str | None = Field(
        default=None, max_length=63, description="A stage of the source project; its own if absent"
    )
    deploy: bool = Field(default=False, description="Queue a deploy of the clone at once")


class DrillCheckIn(Body):
    """``{"http": "/", "port": 8080}`` (a GET through ``wget`` in the container) or
    ``{"exec": [...], "service"?}``; neither: the workload's own health check."""

    http: str | None = Field(default=None, max_length=1024, description="Path to GET")
    port: int | None = Field(default=None, description="Container port for http")
    exec: list[str] | None = Field(default=None, description="A command run in the container")
    service: str | None = Field(default=None, max_length=63, description="Of a stack")
    timeout_s: float | None = Field(default=None, description="Retry until (default 60)")


class DrillIn(Body):
    check: DrillCheckIn | None = None


class DrillOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    workload_id: str
    snapshot_id: str
    status: DrillStatus
    phase: DrillPhase
    origin: DrillOrigin
    check: dict[str, Any]
    log: ProgramText = Field(description="Empty for a viewer: a check's output may print secrets")
    error: ProgramText | None = Field(description="For a viewer, only that the check failed")
    created_at: datetime
    finished_at: datetime | None


class DrillList(BaseModel):
    items: list[DrillOut]


class DrillStanding(BaseModel):
    workload_id: str
    last_status: DrillStatus
    last_drill_id: str
    last_finished_at: datetime | None
    verified_at: datetime | None = Field(description="When a drill of it last passed")


class DrillStandingList(BaseModel):
    items: list[DrillStanding]


class RecoveryPointIn(Body):
    stage: str = Field(max_length=63, description="The project stage to capture")
    mode: str = Field(
        default=CaptureMode.STOP.value,
        json_schema_extra={"enum": [m.value for m in CaptureMode]},
        description="stop (consistent), pause (crash-consistent) or none (live)",
    )


class RecoveryPointItem(BaseModel):
    workload_id: str
    name: str
    snapshot_id: str


class RecoveryPointSkipped(BaseModel):
    workload_id: str
    name: str
    reason: str = Field(description="Why nothing of it is captured (it has no volumes)")


class RecoveryPointRestore(BaseModel):
    workload_id: str
    name: str
    restore_id: str


class RecoveryPointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    stage: str
    mode: CaptureMode
    status: SnapshotStatus
    items: list[RecoveryPointItem]
    skipped: list[RecoveryPointSkipped] = Field(
        description="Workloads of the stage with nothing to capture (no volumes): neither "
        "quiesced nor restored with the point"
    )
    error: ProgramText | None
    created_at: datetime
    finished_at: datetime | None
    restore_status: RestoreStatus | Literal[""] = Field(description='``""`` until restored')
    restores: list[RecoveryPointRestore]
    restore_error: ProgramText | None
    restored_at: datetime | None


class RecoveryPointList(BaseModel):
    items: list[RecoveryPointOut]
