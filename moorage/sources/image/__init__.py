"""The ``image`` source kind: one container run from an image.

The plugin object the ``moorage.sources`` entry point names. Its parts, each a module
of this package: ``config`` (the model), ``plan`` (pure container specs), ``health``
(wait until a container is healthy) and ``deploy`` (what it does to the engine).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from moorage.plugins.kind_config import validate_config
from moorage.plugins.spec import DeployContext, HostPower, Sandbox, WorkloadView
from moorage.settings import Settings
from moorage.sources.image import deploy as image_deploy
from moorage.sources.image import sandbox as image_sandbox
from moorage.sources.image.config import ImageConfig
from moorage.store.states import WorkloadStatus


class ImageSource:
    kind: ClassVar[str] = "image"
    config_model: ClassVar[type[BaseModel]] = ImageConfig
    description: ClassVar[str] = "One container run from an image."
    supports_volumes: ClassVar[bool] = True
    pulls_images: ClassVar[bool] = True
    """A deploy may pull the image again (``deploy?pull=true``): the ``pull`` capability."""

    def sample(self) -> dict[str, Any]:
        return {
            "image": "registry.example.com/team/web:1.4",
            "command": ["httpd", "-f", "-p", "8080"],
            "ports": [{"container": 8080, "host": 18080}],
            "health": {"http": "/", "port": 8080},
            "init": True,
            "stop_timeout": 10,
        }

    def validate(self, config: dict[str, Any]) -> BaseModel:
        return validate_config(self.kind, ImageConfig, config)

    def host_powers(self, workload: WorkloadView, settings: Settings) -> list[HostPower]:
        return image_deploy.host_powers(
            workload, ImageConfig.model_validate(workload.config), settings
        )

    def _config(self, ctx: DeployContext) -> ImageConfig:
        return ImageConfig.model_validate(ctx.workload.config)

    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        return image_deploy.deploy(ctx, self._config(ctx))

    def teardown(self, ctx: DeployContext) -> None:
        image_deploy.teardown(ctx)

    def data_volumes(self, ctx: DeployContext) -> list[str]:
        return []  # its container mounts Moorage volumes only

    def status(self, ctx: DeployContext) -> WorkloadStatus:
        return image_deploy.status(ctx)

    def reconcile(self, ctx: DeployContext) -> bool:
        return image_deploy.reconcile(ctx, self._config(ctx))

    def redeploy(self, ctx: DeployContext) -> dict[str, Any]:
        return image_deploy.redeploy(ctx, self._config(ctx))

    def logs(self, ctx: DeployContext, tail: int) -> str:
        return image_deploy.logs(ctx, tail)

    def promoted(self, config: dict[str, Any], artifact: dict[str, Any]) -> dict[str, Any]:
        return image_deploy.promoted(config, artifact)

    def start_sandbox(self, ctx: DeployContext, sandbox: Sandbox) -> dict[str, str]:
        return image_sandbox.start(ctx, self._config(ctx), sandbox)

    def sandbox_healthy(
        self, ctx: DeployContext, sandbox: Sandbox, containers: dict[str, str], timeout: float
    ) -> str:
        return image_sandbox.healthy(ctx, self._config(ctx), containers[""], timeout)

    def host_ports(self, config: dict[str, Any]) -> list[tuple[int, str]]:
        ports = config.get("ports") or []
        return [(int(p["host"]), str(p.get("protocol", "tcp"))) for p in ports if p.get("host")]

    def without_host_ports(self, config: dict[str, Any]) -> dict[str, Any]:
        ports = [{k: v for k, v in p.items() if k != "host"} for p in config.get("ports") or []]
        return {**config, "ports": ports} if "ports" in config else dict(config)
