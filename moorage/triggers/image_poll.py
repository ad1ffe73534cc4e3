"""The ``image-poll`` trigger kind: deploys when a tag's digest changes in the registry.

Config validation only for now; polling arrives with the triggers issue.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from moorage.plugins.base import validate_config


class ImagePollConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_seconds: int = Field(
        default=300, ge=30, le=86400, description="How often to ask the registry"
    )


class ImagePollTrigger:
    kind: ClassVar[str] = "image-poll"
    config_model: ClassVar[type[BaseModel]] = ImagePollConfig
    description: ClassVar[str] = "Deploys bound image workloads when their tag's digest changes."
    uses_token: ClassVar[bool] = False

    def sample(self) -> dict[str, Any]:
        return {"interval_seconds": 300}

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, ImagePollConfig, config)
