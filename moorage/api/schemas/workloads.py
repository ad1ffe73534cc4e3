"""Workloads, their deployments, and what a person asks of them: promote, reconcile, logs,
env, chain and volumes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from moorage.api.schemas.base import MULTILINE_TEXT, OPAQUE_TEXT, Body
from moorage.api.schemas.output import ProgramText
from moorage.store.states import DeploymentStatus, DesiredState, WorkloadStatus
from moorage.volumes.paths import VOLUME_SCOPES


class WorkloadIn(Body):
    name: str = Field(max_length=63)
    kind: str = Field(max_length=63)
    project: str = Field(max_length=63)
    stage: str = Field(max_length=63)
    config: dict[str, Any] = Field(json_schema_extra=MULTILINE_TEXT)
    ref_id: str | None = Field(default=None, max_length=128)


class WorkloadPatch(Body):
    name: str | None = Field(default=None, max_length=63)
    config: dict[str, Any] | None = Field(
        default=None,
        description="JSON Merge Patch (RFC 7386) applied to the current config",
        json_schema_extra=MULTILINE_TEXT,
    )
    ref_id: str | None = Field(default=None, max_length=128)
    keep_last: int | None = Field(
        default=None,
        ge=1,
        le=10000,
        description="Retention: keep this many captured snapshots; null keeps them all",
    )
    checkpoint: str | None = Field(
        default=None,
        max_length=16,
        description='"before-deploy": every deploy first captures a snapshot; "none"',
    )


class LastDeployment(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    status: DeploymentStatus
    created_at: datetime
    finished_at: datetime | None


class WorkloadOut(BaseModel):
    id: str
    ref_id: str
    name: str
    kind: str
    project: str
    stage: str
    config: dict[str, Any]
    desired_state: DesiredState = Field(
        description="What reconcile keeps it at; set by stop, start, restart and a deploy",
    )
    status: WorkloadStatus = Field(
        description="As last observed; ``never_deployed`` before a first deploy"
    )
    pending_changes: bool = Field(
        default=False,
        description="A saved change of config, env or volumes that no successful deploy has run",
    )
    keep_last: int | None = None
    checkpoint: str = Field(default="none", description="none or before-deploy (SPEC 10)")
    created_at: datetime
    updated_at: datetime
    last_deployment: LastDeployment | None = None


class WorkloadList(BaseModel):
    items: list[WorkloadOut]


class DeploymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    workload_id: str
    status: DeploymentStatus
    reason: str
    artifact: dict[str, Any]
    pull: bool = False
    error: ProgramText | None
    log: ProgramText
    checkpoint_snapshot_id: str | None = Field(
        default=None, description="the snapshot this deploy captured first (checkpoint)"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class DeploymentList(BaseModel):
    items: list[DeploymentOut]


class RollbackIn(Body):
    data: bool = Field(
        default=False,
        description="restore the checkpoint taken by the first deploy after this one too "
        "(admin; X-Confirm-Restore: <workload name>)",
    )


class RollbackOut(BaseModel):
    deployment: DeploymentOut | None = Field(
        description="the deploy queued (null while a rollback with data restores first)"
    )
    restore_id: str | None = None
    checkpoint_snapshot_id: str | None = None


class PromoteIn(Body):
    source: str = Field(max_length=32, description="The workload whose deployed artifact to copy")


class ReconcileOut(BaseModel):
    status: WorkloadStatus


class LogsOut(BaseModel):
    logs: str


class EnvValue(Body):
    value: str | None = Field(
        description="null on read for secrets; null on write keeps it",
        json_schema_extra=OPAQUE_TEXT,
    )
    secret: bool = False


class RevealedEnv(BaseModel):
    key: str
    value: str
    secret: bool


class ChainIn(Body):
    next: list[str]


class ChainOut(BaseModel):
    next: list[str]


class VolumeIn(Body):
    name: str = Field(max_length=63)
    scope: str = Field(max_length=16, json_schema_extra={"enum": list(VOLUME_SCOPES)})
    source: str = Field(max_length=4096)
    target: str = Field(max_length=4096)
    read_only: bool = False
    shared: bool = Field(
        default=False,
        description="Another workload may mount the same stage or project directory "
        "when its volume says so too",
    )
    service: str | None = Field(
        default=None,
        max_length=63,
        description="compose: the service the bind goes to (required); other kinds: none",
    )
    # Read-only fields of VolumeOut, accepted and ignored so a GET can be PUT back as is.
    host_path: str | None = Field(default=None, description="ignored: derived by Moorage")
    problem: str | None = Field(default=None, description="ignored: derived by Moorage")


class VolumeOut(BaseModel):
    name: str
    scope: str
    source: str
    target: str
    read_only: bool
    shared: bool = False
    service: str | None = None
    host_path: str | None = Field(description="null when the source no longer passes the rules")
    problem: str | None = Field(default=None, description="why host_path is null")


class UncoveredVolumeOut(BaseModel):
    name: str
    services: list[str]


class VolumeList(BaseModel):
    items: list[VolumeOut]
    not_covered: list[UncoveredVolumeOut] = Field(
        default_factory=list,
        description="volumes the workload's own Compose file declares (named volumes): "
        "Docker keeps them and snapshots do not cover them",
    )
