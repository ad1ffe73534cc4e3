"""Restoring a snapshot elsewhere: into a new workload (clone) and into a sandbox (drill)."""

from __future__ import annotations

from pydantic import Field

from moorage.api.schemas.base import Body


class CloneIn(Body):
    name: str = Field(max_length=63, description="The new workload's name (a slug)")
    stage: str | None = Field(
        default=None, max_length=63, description="A stage of the source project; its own if absent"
    )
    deploy: bool = Field(default=False, description="Queue a deploy of the clone at once")
