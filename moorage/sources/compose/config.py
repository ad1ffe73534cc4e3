"""The ``compose`` kind's config: a Compose file, as a pydantic model.

``ComposeConfig`` holds our structural rules, checked after the file's YAML cost
(``file.load`` bounds it before anything parses the file). Compose's own reading of it
comes later, in the plugin's ``host_powers``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moorage.sources.compose import file as compose_file

MAX_COMPOSE_BYTES = 256 * 1024


class ComposeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    compose: str = Field(min_length=1, description="The Compose file, as YAML text")

    @field_validator("compose")
    @classmethod
    def _parse(cls, text: str) -> str:
        if len(text.encode(errors="replace")) > MAX_COMPOSE_BYTES:
            raise ValueError(f"compose file is larger than {MAX_COMPOSE_BYTES} bytes")
        doc = compose_file.load(text)  # its cost first: nothing parses the file before
        if not isinstance(doc, dict):
            raise ValueError("compose file must be a YAML mapping")
        services = doc.get("services")
        if not isinstance(services, dict) or not services:
            raise ValueError("compose file needs a non-empty 'services' mapping")
        for name, service in services.items():
            if not isinstance(service, dict):
                raise ValueError(f"service {name!r} must be a mapping")
            if "build" in service:
                raise ValueError(
                    f"service {name!r} uses 'build'; Moorage runs images, so push the image "
                    "to a registry and name it with 'image'"
                )
            if not isinstance(service.get("image"), str) or not service["image"]:
                raise ValueError(f"service {name!r} needs an 'image'")
        return text
