"""The container engine as Moorage sees it: plain data in, plain data out.

Plans are built from these types without touching an engine; ``runtime.docker``
is the only implementation and the only module that imports the Docker SDK.
Every method raises ``EngineError`` (or ``EngineUnavailable`` when the daemon
cannot be reached), never an SDK exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from moorage.errors import EngineError

EXEC_KEEP = 64 * 1024  # bytes of an exec's output kept: its end


class ExecTimedOut(EngineError):
    """An exec outlasted its timeout; ``output`` is what it printed by then (bounded)."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


LABEL_WORKLOAD = "moorage.workload"
LABEL_DEPLOYMENT = "moorage.deployment"
LABEL_PROJECT = "moorage.project"
LABEL_STAGE = "moorage.stage"
LABEL_CANDIDATE = "moorage.candidate"
"""On a container that is health-checked before it may take the workload's host ports."""
LABEL_DRILL = "moorage.drill"
"""On every container and network of a restore drill's sandbox: the drill's id."""


@dataclass(frozen=True)
class PortBinding:
    container: int
    host: int | None
    protocol: str = "tcp"
    host_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class BindMount:
    """A host directory bind-mounted; the engine refuses it when ``source`` is missing."""

    source: str
    target: str
    read_only: bool = False
    base: str | None = None
    """The directory ``source`` must stay below; with it, the engine mounts the directory
    it checked (a pin), not whatever the path names when the container starts."""


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    labels: dict[str, str]
    network: str
    aliases: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: tuple[PortBinding, ...] = ()
    mounts: tuple[BindMount, ...] = ()
    init: bool = True
    stop_timeout: int = 10
    restart_policy: str = "unless-stopped"


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    state: str  # created, running, paused, restarting, exited, dead
    health: str | None  # starting, healthy, unhealthy, or None without a HEALTHCHECK
    labels: dict[str, str]
    image_id: str
    ports: dict[tuple[int, str], int]  # (container port, protocol) -> published host port
    exit_code: int | None = None
    restarts: int = 0
    """How often the engine restarted it (a restart policy reviving a crash)."""

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class Image:
    id: str
    digests: tuple[str, ...]  # repo@sha256:... as the registry knows it
    has_healthcheck: bool


@dataclass(frozen=True)
class RegistryCredentials:
    """A login for one registry host: ``server``. Sent only with a reference on that host."""

    username: str
    password: str
    server: str | None = None

    def serves(self, ref: str) -> bool:
        """True when ``ref`` is pulled from the host these credentials belong to."""
        return self.server is not None and registry_host_of_server(self.server) == registry_host(
            ref
        )


DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def registry_host(ref: str) -> str:
    """The registry host an image reference pulls from, as Docker decides it: the first
    path component when it holds a '.' or ':' or is ``localhost``; Docker Hub otherwise."""
    first, sep, _rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host = first.lower()
        return DOCKER_HUB if host in _HUB_ALIASES else host
    return DOCKER_HUB


def registry_host_of_server(server: str) -> str:
    """A credentials' ``server`` (``https://host:port/v1/``, ``host``...) as a registry host."""
    host = server.strip().lower()
    host = host.split("://", 1)[1] if "://" in host else host
    host = host.split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


Progress = Callable[[str], None]


class Engine(Protocol):
    """What Moorage needs from a container engine."""

    def ping(self) -> None:
        """Raise EngineUnavailable when the daemon cannot be reached."""
        ...

    def image(self, ref: str) -> Image | None:
        """The local image for ``ref``, or None when it is not present."""
        ...

    def pull(self, ref: str, auth: RegistryCredentials | None, progress: Progress) -> Image:
        """Pull ``ref``, reporting progress lines; raise EngineError with the registry's reason."""
        ...

    def registry_digest(self, ref: str, auth: RegistryCredentials | None) -> str:
        """The manifest digest (``sha256:...``) the registry serves for ``ref`` now."""
        ...

    def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        """Create the bridge network ``name`` unless it exists."""
        ...

    def create(self, spec: ContainerSpec) -> Container:
        """Create (not start) a container."""
        ...

    def start(self, container_id: str) -> None: ...

    def stop(self, container_id: str, timeout: int) -> None: ...

    def pause(self, container_id: str) -> None:
        """Freeze every process of a running container (cgroup freezer)."""
        ...

    def unpause(self, container_id: str) -> None: ...

    def remove(self, container_id: str) -> None:
        """Force-remove a container; a missing one is not an error."""
        ...

    def get(self, container_id: str) -> Container | None: ...

    def container_env(self, container_id: str) -> dict[str, str]:
        """The environment a container was created with (image defaults included), as the
        engine will hand it to the container's processes."""
        ...

    def containers(self, labels: dict[str, str]) -> list[Container]:
        """All containers, running or not, carrying every one of ``labels``."""
        ...

    def exec(
        self,
        container_id: str,
        command: list[str],
        *,
        timeout_s: float | None = None,
        keep: int = EXEC_KEEP,
    ) -> tuple[int, str]:
        """Run a command in a running container; return its exit code and output: stdout
        and stderr together, at most their last ``keep`` bytes (an earlier part is
        dropped while the command runs). Raises ExecTimedOut, holding the output so far,
        when the command has not ended after ``timeout_s`` seconds (it is left running:
        Docker has no call to end an exec), EngineError when it cannot run."""
        ...

    def logs(self, container_id: str, tail: int) -> str: ...

    def last_exit_code(self, container_id: str) -> int | None:
        """The exit code of the container's last exit, also when a restart policy has
        started it again since (its state then says 0); None when it never exited.
        Docker: the ``exitCode`` of its last ``die`` event."""
        ...

    def remove_network(self, name: str) -> None:
        """Remove a network if it exists and nothing uses it."""
        ...

    def volumes(self, labels: dict[str, str]) -> list[str]:
        """Names of the Docker volumes carrying every one of ``labels`` (exact label match)."""
        ...

    def remove_volume(self, name: str) -> None:
        """Remove a Docker volume; a missing one is not an error."""
        ...

    def prune_pins(self) -> list[str]:
        """Drop the volume pins of containers that no longer exist; answer their names."""
        ...
