"""Snapshots and restores."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moorage.api.schemas.base import Body
from moorage.api.schemas.offsite import CopyOut
from moorage.api.schemas.output import ProgramText
from moorage.store.states import (
    CaptureMode,
    RestorePhase,
    RestoreStatus,
    SnapshotOrigin,
    SnapshotStatus,
    SwapMethod,
)


class CaptureIn(Body):
    volumes: list[str] | None = Field(default=None, description="Volume names; all if absent")
    # A string the service checks, so a bad one is 422 ``invalid_mode`` like every other
    # refusal of a capture; the document still lists the modes.
    mode: str = Field(
        default=CaptureMode.STOP.value,
        json_schema_extra={"enum": [m.value for m in CaptureMode]},
        description="stop (consistent), pause (crash-consistent) or none (live)",
    )


class SnapshotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    workload_id: str
    origin: SnapshotOrigin
    mode: CaptureMode | Literal[""] = Field(description='``""`` for an import')
    status: SnapshotStatus
    volumes: list[str]
    size: int
    sha256: str
    progress_bytes: int
    total_bytes: int
    error: ProgramText | None
    warnings: list[ProgramText]
    log: ProgramText = Field(default="", description="what the capture's hooks ran and printed")
    manifest: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    copies: list[CopyOut] = Field(
        default_factory=list, description="Its off-site copies, one per storage target"
    )
    verified_at: datetime | None = Field(
        default=None, description="When a restore drill of this snapshot last passed"
    )

    @field_validator("manifest", mode="before")
    @classmethod
    def _shown_manifest(cls, manifest: dict[str, Any] | None) -> dict[str, Any]:
        """What a client sees of the stored manifest: these four keys, nothing else."""
        manifest = manifest or {}
        return {
            "format": manifest.get("format"),
            "workload": manifest.get("workload"),
            "created_at": manifest.get("created_at"),
            "volumes": manifest.get("volumes", []),
        }


class SnapshotList(BaseModel):
    items: list[SnapshotOut]


class RestoreIn(Body):
    volumes: list[str] | None = Field(default=None, description="A subset; all if absent")


class RestoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from its table row

    id: str
    workload_id: str
    snapshot_id: str
    status: RestoreStatus
    phase: RestorePhase
    volumes: list[str]
    progress_bytes: int
    total_bytes: int
    swap: SwapMethod | Literal[""] = Field(
        description='exchange (RENAME_EXCHANGE) or rename; ``""`` before the pre-flight chose'
    )
    error: ProgramText | None
    pre_restore_snapshot_id: str | None = Field(
        description="The snapshot holding the replaced data, once it is packed and ready"
    )
    kept_paths: list[str] = Field(
        description="Directories of replaced data left on disk because no durable archive "
        "holds all of it (a socket, a device, a failed pack); empty when none"
    )
    kept_reason: str | None = Field(description="Why kept_paths were kept")
    created_at: datetime
    finished_at: datetime | None


class RestoreList(BaseModel):
    items: list[RestoreOut]
