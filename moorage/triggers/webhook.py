"""The ``webhook`` trigger kind: ``POST /hooks/{token}``, optionally signed.

Config validation only for now; receiving deliveries arrives with the
triggers issue.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from moorage.plugins.base import validate_config


class WebhookFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    branch: str | None = Field(
        default=None, min_length=1, max_length=255, description="Glob on the pushed branch"
    )
    tag: str | None = Field(
        default=None, min_length=1, max_length=255, description="Glob on the pushed tag"
    )


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["github", "gitea", "gitlab", "generic"] = "generic"
    secret: SecretStr | None = Field(
        default=None, min_length=8, max_length=256, description="Shared secret for signatures"
    )
    filters: WebhookFilters | None = None


class WebhookTrigger:
    kind: ClassVar[str] = "webhook"
    config_model: ClassVar[type[BaseModel]] = WebhookConfig
    description: ClassVar[str] = "Deploys when its URL is called, e.g. by a Git push."
    uses_token: ClassVar[bool] = True

    def sample(self) -> dict[str, Any]:
        return {"provider": "github", "secret": "change-me-please", "filters": {"branch": "main"}}

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, WebhookConfig, config)
