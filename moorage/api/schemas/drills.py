"""Restoring a snapshot elsewhere: into a new workload (clone) and into a sandbox (drill)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from moorage.api.schemas.base import Body
from moorage.store.states import DrillOrigin, DrillPhase, DrillStatus


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
    log: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class DrillList(BaseModel):
    items: list[DrillOut]
