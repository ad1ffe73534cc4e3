"""Triggers, their webhook deliveries, and binding one to a workload."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from moorage.api.schemas.base import MULTILINE_TEXT, Body
from moorage.store.states import DeliveryOutcome, DeliverySignature


class TriggerIn(Body):
    kind: str = Field(max_length=63)
    name: str = Field(max_length=63)
    config: dict[str, Any] = Field(default_factory=dict, json_schema_extra=MULTILINE_TEXT)


class TriggerPatch(Body):
    name: str | None = Field(default=None, max_length=63)
    config: dict[str, Any] | None = Field(
        default=None,
        description="JSON Merge Patch (RFC 7386) applied to the current config",
        json_schema_extra=MULTILINE_TEXT,
    )


class TriggerOut(BaseModel):
    id: str
    kind: str
    name: str
    config: dict[str, Any]
    has_secret: bool
    token: str | None = Field(description="Webhook token; shown to operators and admins")
    url: str | None = Field(description="Webhook URL; shown to operators and admins")
    workloads: list[str]
    next_run_at: datetime | None = Field(default=None, description="Timed kinds: next firing")
    last_fired_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class TriggerList(BaseModel):
    items: list[TriggerOut]


class DeliveryOut(BaseModel):
    id: int
    at: datetime
    source: str
    provider: str
    event: str
    delivery_id: str | None
    signature: DeliverySignature
    outcome: DeliveryOutcome
    reason: str
    status_code: int
    deployments: list[str]
    commit: str | None = Field(default=None, description="The pushed commit's object name")
    commit_title: str | None = Field(default=None, description="Its message's first line")


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


class BindIn(Body):
    trigger_id: str | None = Field(default=None, max_length=32)
    trigger: TriggerIn | None = None
