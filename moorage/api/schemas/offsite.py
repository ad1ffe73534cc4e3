"""Off-site copy policies and copies (SPEC section 11)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from moorage.api.schemas.base import Body
from moorage.store.states import CopyStatus


class CopyOut(BaseModel):
    """A snapshot's copy on one storage target."""

    model_config = ConfigDict(from_attributes=True)  # built from its table row

    target_id: str
    status: CopyStatus
    verified_at: datetime | None
    error: str | None
    size: int = Field(description="Bytes on the target (ciphertext)")
    attempts: int
    requested_at: datetime


class OffsiteIn(Body):
    target_id: str = Field(description="A storage target (admins add them)")
    keep_last: int | None = Field(default=None, description="Keep the n newest copies")
    keep_daily: int | None = Field(default=None, description="Keep the newest of n days")
    keep_weekly: int | None = Field(default=None, description="Keep the newest of n ISO weeks")
    window_hours: int = Field(
        default=24,
        description="A ready snapshot not copied and verified this long after its capture "
        "is an alert (moorage_offsite_stale, and a red mark in the UI)",
    )


class OffsiteOut(BaseModel):
    """A workload's policy; ``target_id`` null when none is set."""

    model_config = ConfigDict(from_attributes=True)

    target_id: str | None = None
    keep_last: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    window_hours: int | None = None
    stale: bool = Field(
        default=False,
        description="A ready snapshot has no verified copy on the target within the window",
    )


class CopyIn(Body):
    target_id: str
