"""The ``compose`` source kind: a Compose project from a Compose file.

Only config validation lives here until the deploy issue adds deploy,
teardown and reconcile through the runtime seam.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from moorage.plugins.base import validate_config

MAX_COMPOSE_BYTES = 256 * 1024


class ComposeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    compose: str = Field(min_length=1, description="The Compose file, as YAML text")

    @field_validator("compose")
    @classmethod
    def _parse(cls, text: str) -> str:
        if len(text.encode()) > MAX_COMPOSE_BYTES:
            raise ValueError(f"compose file is larger than {MAX_COMPOSE_BYTES} bytes")
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ValueError(f"compose file is not valid YAML{where}") from None
        if not isinstance(doc, dict):
            raise ValueError("compose file must be a YAML mapping")
        services = doc.get("services")
        if not isinstance(services, dict) or not services:
            raise ValueError("compose file needs a non-empty 'services' mapping")
        for name, service in services.items():
            if not isinstance(service, dict):
                raise ValueError(f"service {name!r} must be a mapping")
            if "image" not in service and "build" not in service:
                raise ValueError(f"service {name!r} needs an 'image' or a 'build'")
        return text


class ComposeSource:
    kind: ClassVar[str] = "compose"
    config_model: ClassVar[type[BaseModel]] = ComposeConfig
    description: ClassVar[str] = "A Compose project described by a Compose file."

    def sample(self) -> dict[str, Any]:
        return {
            "compose": (
                "services:\n"
                "  web:\n"
                "    image: registry.example.com/team/web:1.4\n"
                "    ports:\n"
                '      - "127.0.0.1:18081:8080"\n'
            )
        }

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, ComposeConfig, config)
