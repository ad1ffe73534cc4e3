"""The ``compose`` source kind: a Compose project from a Compose file.

The config model and the plugin object live here; what it does to the engine
lives in ``compose_runtime``. A file is checked twice at create/update time: by
our structural rules, then by Compose itself (``config -q``), so a file Compose
cannot run is a 422 then and not a failed deploy later.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from moorage.errors import InvalidInput
from moorage.plugins.base import validate_config
from moorage.plugins.spec import DeployContext
from moorage.runtime.compose import ComposeRunner

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
            if "build" in service:
                raise ValueError(
                    f"service {name!r} uses 'build'; Moorage runs images, so push the image "
                    "to a registry and name it with 'image'"
                )
            if not isinstance(service.get("image"), str) or not service["image"]:
                raise ValueError(f"service {name!r} needs an 'image'")
        return text


# Service keys that reach the host: only an admin may deploy a file that uses them.
HOST_KEYS = ("privileged", "cap_add", "devices", "security_opt", "volumes_from", "sysctls")
HOST_MODES = ("network_mode", "pid", "ipc", "userns_mode", "uts", "cgroup")


def _bind_source(volume: Any) -> str | None:
    """The host path of a bind mount in short or long syntax, or None for a named volume."""
    if isinstance(volume, dict):
        if volume.get("type") == "bind":
            return str(volume.get("source", ""))
        return None
    if isinstance(volume, str) and ":" in volume:
        source = volume.split(":", 1)[0]
        if source.startswith(("/", ".", "~", "$")):
            return source
    return None


def host_powers(text: str) -> str | None:
    """The first thing in a Compose file that reaches past a container, or None."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return None
    services = doc.get("services") if isinstance(doc, dict) else None
    for name, service in (services or {}).items():
        if not isinstance(service, dict):
            continue
        for key in HOST_KEYS:
            if service.get(key):
                return f"service {name!r} uses {key!r}"
        for key in HOST_MODES:
            value = service.get(key)
            if isinstance(value, str) and (value == "host" or value.startswith("container:")):
                return f"service {name!r} sets {key}: {value}"
        for volume in service.get("volumes") or []:
            source = _bind_source(volume)
            if source is not None:
                return f"service {name!r} bind-mounts the host path {source!r}"
    return None


@functools.lru_cache(maxsize=256)
def _compose_verdict(text: str) -> str | None:
    """What Compose itself says of a file (None: fine). Cached: it takes a second or so."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="moorage-compose-check-") as tmp:
        Path(tmp, "compose.yml").write_text(text)
        code, output = ComposeRunner().run(
            ["-f", "compose.yml", "config", "-q"],
            cwd=Path(tmp),
            log=lambda _l: None,
            timeout=60,
        )
    if code == 0:
        return None
    lines = [ln for ln in output.splitlines() if ln.strip()]
    return " ".join(lines[-3:]) if lines else f"compose config exited {code}"


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
        model = validate_config(self.kind, ComposeConfig, config)
        assert isinstance(model, ComposeConfig)
        verdict = _compose_verdict(model.compose)
        if verdict is not None:
            raise InvalidInput(
                f"invalid config for kind 'compose': Compose refuses the file: {verdict}",
                code="invalid_config",
                details=[{"field": "compose", "message": verdict}],
            )
        return model

    def requires_admin(self, config: dict[str, Any]) -> str | None:
        return host_powers(str(config.get("compose", "")))

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
