"""The ``compose`` source kind: a Compose project from a Compose file.

The config model and the plugin object live here; what it does to the engine
lives in ``compose_runtime``. A file is checked in three steps: its YAML cost
(``compose_file.check_cost``, before anything parses it), our structural rules
(``validate``), then Compose's own reading of it with the workload's env
(``host_powers``: ``config`` resolves the model, ``sources.policy`` judges it), so a
file Compose cannot run is a 422 at create/update time and not a failed deploy later.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from moorage.deployer import plan
from moorage.plugins.base import validate_config
from moorage.plugins.spec import DeployContext, HostPower, WorkloadView
from moorage.settings import Settings
from moorage.sources import compose_file, policy

MAX_COMPOSE_BYTES = 256 * 1024
# Where relative paths of a file not yet resolved are taken to lie (a name, never a place).
UNRESOLVED_DIR = "/moorage-workload-directory"


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


class ComposeSource:
    kind: ClassVar[str] = "compose"
    config_model: ClassVar[type[BaseModel]] = ComposeConfig
    description: ClassVar[str] = "A Compose project described by a Compose file."
    supports_volumes: ClassVar[bool] = False

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

    def host_powers(self, workload: WorkloadView, settings: Settings) -> list[HostPower]:
        """Files the text names for Compose to read are judged first, and when it names
        any, Compose does not run (their reads are the powers; an admin's file is then
        resolved at deploy). Otherwise ``config`` resolves the model the table judges."""
        text = ComposeConfig.model_validate(workload.config).compose
        scope = policy.Scope(
            directory=UNRESOLVED_DIR,
            publish_addr=settings.publish_addr,
            mounts=tuple(str(v.host_path) for v in workload.volumes),
            networks=frozenset({plan.network_name(workload.project, workload.stage)}),
        )
        reads = policy.before_compose(compose_file.load_mapping(text), scope)
        if reads:
            return reads
        resolved = compose_file.RESOLVER.resolve(text, workload.env)
        model = policy.Model(resolved.model, resolved.written)
        where = dataclasses.replace(scope, directory=resolved.directory, project=resolved.project)
        return policy.review(model, where)

    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        return compose_runtime.deploy(
            ctx, ComposeConfig.model_validate(ctx.workload.config).compose
        )

    def teardown(self, ctx: DeployContext) -> None:
        compose_runtime.teardown(ctx)

    def status(self, ctx: DeployContext) -> str:
        return compose_runtime.status(ctx)

    def reconcile(self, ctx: DeployContext) -> bool:
        return compose_runtime.reconcile(ctx)

    def redeploy(self, ctx: DeployContext) -> dict[str, Any]:
        return compose_runtime.redeploy(ctx)

    def logs(self, ctx: DeployContext, tail: int) -> str:
        return compose_runtime.logs(ctx, tail)

    def promoted(self, config: dict[str, Any], artifact: dict[str, Any]) -> dict[str, Any]:
        return {**config, "compose": artifact["compose"]}


# Imported last: compose_runtime builds on the plan module, which imports the sources.
from moorage.sources import compose_runtime  # noqa: E402
