"""A workload's capture hooks (SPEC section 10): ``PUT/GET .../snapshot-hooks``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from moorage.api.schemas.base import MULTILINE_TEXT, Body
from moorage.services.snapshot_hooks import DEFAULT_TIMEOUT_S


class HookIn(Body):
    command: list[str] = Field(
        description="the program and its arguments, run with docker exec (no shell: say "
        '["sh", "-c", "..."] for one)',
        json_schema_extra=MULTILINE_TEXT,
    )
    service: str | None = Field(
        default=None,
        max_length=63,
        description="compose: the service whose container runs it (required); other kinds: none",
    )


class SnapshotHooksIn(Body):
    before: HookIn | None = Field(
        default=None, description="runs before each capture; a failure fails the capture"
    )
    after: HookIn | None = Field(
        default=None, description="runs after each capture, whatever happened"
    )
    timeout_s: int = Field(default=DEFAULT_TIMEOUT_S, description="each hook's limit, seconds")


class HookOut(BaseModel):
    command: list[str]
    service: str | None = None


class SnapshotHooksOut(BaseModel):
    before: HookOut | None = None
    after: HookOut | None = None
    timeout_s: int
