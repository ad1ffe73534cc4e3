"""The ``compose`` source kind: a Compose project from a Compose file.

The plugin object the ``moorage.sources`` entry point names. Its parts, each a module
of this package: ``config`` (the model), ``file`` (the file as data) and ``deploy``
(what it does to the engine). A file is checked in three steps: its YAML cost
(``file.check_cost``, before anything parses it), our structural rules
(``config.ComposeConfig``), then Compose's own reading of it with the workload's env
(``host_powers``: ``docker compose config`` resolves the model, ``sources.policy`` judges
it), so a file Compose cannot run is a 422 at create/update time and not a failed
deploy later.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from pydantic import BaseModel

from moorage.plugins.kind_config import validate_config
from moorage.plugins.spec import DeployContext, HostPower, Sandbox, UncoveredVolume, WorkloadView
from moorage.settings import Settings
from moorage.sources import stage
from moorage.sources.compose import deploy as compose_deploy
from moorage.sources.compose import file as compose_file
from moorage.sources.compose import sandbox as compose_sandbox
from moorage.sources.compose import stack as compose_stack
from moorage.sources.compose.config import ComposeConfig
from moorage.sources.policy.model import Model, Scope
from moorage.sources.policy.table import before_compose, review
from moorage.store.states import WorkloadStatus

# Where relative paths of a file not yet resolved are taken to lie (a name, never a place).
UNRESOLVED_DIR = "/moorage-workload-directory"


class ComposeSource:
    kind: ClassVar[str] = "compose"
    config_model: ClassVar[type[BaseModel]] = ComposeConfig
    description: ClassVar[str] = "A Compose project described by a Compose file."
    supports_volumes: ClassVar[bool] = True

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
        scope = Scope(
            directory=UNRESOLVED_DIR,
            publish_addr=settings.publish_addr,
            mounts=tuple(str(v.host_path) for v in workload.volumes),
            networks=frozenset({stage.network_name(workload.project, workload.stage)}),
        )
        reads = before_compose(compose_file.load_mapping(text), scope)
        if reads:
            return reads
        resolved = compose_file.RESOLVER.resolve(text, workload.env)
        model = Model(resolved.model, resolved.written)
        where = dataclasses.replace(scope, directory=resolved.directory, project=resolved.project)
        return review(model, where)

    def service_names(self, config: dict[str, Any], env: dict[str, str]) -> list[str]:
        text = ComposeConfig.model_validate(config).compose
        return compose_stack.service_names(compose_stack.model_of(text, env))

    def service_ports(
        self, config: dict[str, Any], env: dict[str, str]
    ) -> dict[str, set[int] | None]:
        text = ComposeConfig.model_validate(config).compose
        return compose_stack.published_ports(compose_stack.model_of(text, env))

    def uncovered_volumes(
        self, config: dict[str, Any], env: dict[str, str]
    ) -> list[UncoveredVolume]:
        text = ComposeConfig.model_validate(config).compose
        return compose_stack.uncovered(compose_stack.model_of(text, env))

    def deploy(self, ctx: DeployContext) -> dict[str, Any]:
        return compose_deploy.deploy(ctx, ComposeConfig.model_validate(ctx.workload.config).compose)

    def teardown(self, ctx: DeployContext) -> None:
        compose_deploy.teardown(ctx)

    def data_volumes(self, ctx: DeployContext) -> list[str]:
        return compose_deploy.named_volumes(ctx)

    def status(self, ctx: DeployContext) -> WorkloadStatus:
        return compose_deploy.status(ctx)

    def reconcile(self, ctx: DeployContext) -> bool:
        return compose_deploy.reconcile(ctx)

    def redeploy(self, ctx: DeployContext) -> dict[str, Any]:
        return compose_deploy.redeploy(ctx)

    def logs(self, ctx: DeployContext, tail: int) -> str:
        return compose_deploy.logs(ctx, tail)

    def promoted(self, config: dict[str, Any], artifact: dict[str, Any]) -> dict[str, Any]:
        return {**config, "compose": artifact["compose"]}

    def start_sandbox(self, ctx: DeployContext, sandbox: Sandbox) -> dict[str, str]:
        return compose_sandbox.start(ctx, sandbox)

    def sandbox_healthy(
        self, ctx: DeployContext, sandbox: Sandbox, containers: dict[str, str], timeout: float
    ) -> str:
        return compose_sandbox.healthy(ctx, sandbox, timeout)
