"""The ``image`` kind's config: one container run from an image, as a pydantic model.

The model's JSON schema drives API validation, the UI form and the docs. Nothing here
touches the engine: ``deploy`` does that, from a validated ``ImageConfig``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from moorage.runtime.engine import RegistryCredentials, registry_host, registry_host_of_server

# A Docker image reference: [registry[:port]/]path[:tag][@digest], lower-case path.
IMAGE_REF = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


LOCAL_IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PortMapping(Strict):
    container: int = Field(ge=1, le=65535, description="Port the app listens on inside")
    host: int | None = Field(
        default=None, ge=1, le=65535, description="Loopback port to publish on; picked if empty"
    )
    protocol: Literal["tcp", "udp"] = "tcp"


class HealthCheck(Strict):
    """How a deploy decides the new container is healthy.

    Set ``http`` (a path probed on the published loopback port) or ``cmd`` (run
    with ``docker exec``); with neither, the image's HEALTHCHECK is used, or the
    container must still be running after ``grace_seconds``.
    """

    http: str | None = Field(default=None, pattern=r"^/[\x21-\x7e]*$", max_length=1024)
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Container port for http; the first published tcp port if empty",
        json_schema_extra={"x-follows": "ports.0.container"},  # the UI shows it in the field
    )
    cmd: list[str] | None = Field(default=None, min_length=1)
    timeout_seconds: float = Field(default=60, gt=0, le=3600)
    interval_seconds: float = Field(default=1, gt=0, le=60)
    grace_seconds: float = Field(default=2, ge=0, le=600)

    @model_validator(mode="after")
    def _one_probe(self) -> HealthCheck:
        if self.http and self.cmd:
            raise ValueError("set either http or cmd, not both")
        return self


def http_port(health: HealthCheck, ports: list[PortMapping]) -> int | None:
    """The container port an http health check probes: ``health.port``, or the first
    published tcp port; None when neither is set. The probe reaches it through its
    published tcp port, so the model refuses a port that is not one (``health._probe``
    says the same at deploy)."""
    return health.port or next((p.container for p in ports if p.protocol == "tcp"), None)


class RegistryAuth(Strict):
    """A registry login, bound to the registry host it was saved for (``server``).

    Left empty, ``server`` becomes the image's registry host. Moorage sends the login only
    with an image on that host; when the image moves to another host the login is dropped
    from the config, never carried along.
    """

    username: str = Field(min_length=1, max_length=256)
    password: SecretStr = Field(min_length=1)
    server: str | None = Field(default=None, max_length=256)

    def credentials(self) -> RegistryCredentials:
        return RegistryCredentials(self.username, self.password.get_secret_value(), self.server)


class ImageConfig(Strict):
    image: str = Field(min_length=1, max_length=512, description="Image reference to run")
    command: list[str] | None = Field(default=None, description="Overrides the image's CMD")
    ports: list[PortMapping] = Field(default_factory=list, max_length=64)
    health: HealthCheck | None = None
    init: bool = Field(default=True, description="Run Docker's init as PID 1")
    stop_timeout: int = Field(default=10, ge=0, le=600, description="Seconds before SIGKILL")
    registry_auth: RegistryAuth | None = None

    @field_validator("health")
    @classmethod
    def _probe_reaches_a_port(
        cls, health: HealthCheck | None, info: ValidationInfo
    ) -> HealthCheck | None:
        """An http check probes a published tcp port: refused here, not after a whole
        health timeout (``ports`` is validated first; left to its own errors when bad)."""
        ports = info.data.get("ports")
        if health is None or not health.http or ports is None:
            return health
        tcp = [p.container for p in ports if p.protocol == "tcp"]
        port = http_port(health, ports)
        if port is None:
            raise ValueError(
                "an http health check probes a published tcp port and ports has none; "
                "publish the port the app listens on in ports, or check with cmd"
            )
        if port not in tcp:
            raise ValueError(
                f"health.port {port} is not a published tcp port (ports: "
                f"{', '.join(map(str, tcp)) or 'none'}); add it to ports or leave it empty"
            )
        return health

    @model_validator(mode="after")
    def _check(self) -> ImageConfig:
        if not IMAGE_REF.fullmatch(self.image):
            raise ValueError(f"{self.image!r} is not a valid image reference")
        seen: set[tuple[int, str]] = set()
        hosts: set[int] = set()
        for port in self.ports:
            key = (port.container, port.protocol)
            if key in seen:
                raise ValueError(f"container port {port.container}/{port.protocol} listed twice")
            seen.add(key)
            if port.host is not None:
                if port.host in hosts:
                    raise ValueError(f"host port {port.host} listed twice")
                hosts.add(port.host)
        if self.registry_auth is not None and not LOCAL_IMAGE_ID.fullmatch(self.image):
            # (A local image id, as a promote may write, names no registry: nothing to bind.)
            host = registry_host(self.image)
            if self.registry_auth.server is None:
                self.registry_auth.server = host
            elif registry_host_of_server(self.registry_auth.server) != host:
                self.registry_auth = None  # saved for another registry: never sent to this one
        return self

    def credentials(self, ref: str) -> RegistryCredentials | None:
        """The login to pull ``ref`` with: only when ``ref`` is on the login's own host."""
        auth = self.registry_auth
        creds = auth.credentials() if auth is not None else None
        return creds if creds is not None and creds.serves(ref) else None
