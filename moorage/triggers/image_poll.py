"""The ``image-poll`` trigger kind: deploys bound image workloads when their tag's digest
changes in the registry. The runner calls ``poll`` on the interval; this module asks the
registry through the engine seam and compares digests.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from moorage.plugins.kind_config import validate_config
from moorage.plugins.spec import WorkloadView
from moorage.runtime.engine import Engine
from moorage.sources.image.config import ImageConfig


class ImagePollConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_seconds: int = Field(
        default=300, ge=5, le=86400, description="How often to ask the registry"
    )


def digest_of(reference: str | None) -> str | None:
    """``sha256:...`` from ``repo@sha256:...`` (or the bare digest)."""
    if not reference:
        return None
    return reference.rpartition("@")[2] or None


class ImagePollTrigger:
    kind: ClassVar[str] = "image-poll"
    config_model: ClassVar[type[BaseModel]] = ImagePollConfig
    description: ClassVar[str] = "Deploys bound image workloads when their tag's digest changes."
    uses_token: ClassVar[bool] = False

    def sample(self) -> dict[str, Any]:
        return {"interval_seconds": 300}

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, ImagePollConfig, config)

    def interval(self, config: dict[str, Any]) -> float:
        return float(ImagePollConfig.model_validate(config).interval_seconds)

    def poll(self, engine: Engine, config: dict[str, Any], workload: WorkloadView) -> str | None:
        if workload.kind != "image" or workload.artifact is None:
            return None  # only deployed image workloads have a digest to compare
        image = ImageConfig.model_validate(workload.config)
        if "@" in image.image:
            return None  # pinned to a digest: it cannot move
        remote = engine.registry_digest(image.image, image.credentials(image.image))
        deployed = digest_of(workload.artifact.get("digest"))
        if remote and remote != deployed:
            return f"{image.image} is now {remote[:19]} (deployed: {(deployed or 'none')[:19]})"
        return None
