"""The ``schedule`` trigger kind: deploys on a cron expression in a time zone.

Firing is driven by the trigger runner through ``next_run`` and ``action``; this
module only knows the calendar. The action is ``deploy`` (queue a deploy of each
bound workload) or ``snapshot`` (capture each bound workload's volumes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from moorage.plugins.base import validate_config


class ScheduleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(
        min_length=1,
        max_length=128,
        description="Cron expression: 5 fields, or 6 with seconds last",
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone")
    action: Literal["deploy", "snapshot"] = "deploy"
    snapshot_mode: Literal["stop", "pause", "none"] | None = Field(
        default=None, description="How a snapshot action holds the containers still (stop)"
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) not in (5, 6) or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression like '0 3 * * *'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone like 'Europe/Berlin'") from None
        return value


class ScheduleTrigger:
    kind: ClassVar[str] = "schedule"
    config_model: ClassVar[type[BaseModel]] = ScheduleConfig
    description: ClassVar[str] = "Deploys on a cron schedule."
    uses_token: ClassVar[bool] = False

    def sample(self) -> dict[str, Any]:
        return {"cron": "0 3 * * *", "timezone": "UTC", "action": "deploy"}

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, ScheduleConfig, config)

    def action(self, config: dict[str, Any]) -> tuple[str, str]:
        model = ScheduleConfig.model_validate(config)
        if model.action == "snapshot":
            return "snapshot", model.snapshot_mode or "stop"
        return "deploy", ""

    def next_run(self, config: dict[str, Any], after: datetime) -> datetime:
        model = ScheduleConfig.model_validate(config)
        local = after.astimezone(ZoneInfo(model.timezone))
        nxt = croniter(model.cron, local).get_next(datetime)
        assert isinstance(nxt, datetime)
        return nxt.astimezone(UTC)
