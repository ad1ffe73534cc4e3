"""An in-memory ``Engine`` for tests that must not need Docker.

It keeps images, containers and networks in dicts and behaves like the engine
where Moorage relies on it: a name is unique, a container runs only its image, a
stopped container keeps its labels and config, a removed one is gone. ``calls``
records every call that changes something, in order, for tests that assert what
was (or was not) done.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from moorage.errors import EngineError
from moorage.runtime.engine import (
    EXEC_KEEP,
    Container,
    ContainerSpec,
    Image,
    Progress,
    RegistryCredentials,
)


@dataclass
class FakeContainer:
    container: Container
    spec: ContainerSpec


@dataclass
class FakeEngine:
    images: dict[str, Image] = field(default_factory=dict)
    """By reference and by id."""
    boxes: dict[str, FakeContainer] = field(default_factory=dict)
    networks: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- test helpers ---------------------------------------------------------

    def add_image(self, ref: str, *, healthcheck: bool = False) -> Image:
        image = Image(
            id=f"sha256:{len(self.images) + 1:064x}", digests=(), has_healthcheck=healthcheck
        )
        self.images[ref] = image
        self.images[image.id] = image
        return image

    def spec_of(self, container_id: str) -> ContainerSpec:
        return self.boxes[container_id].spec

    def crash(self, container_id: str) -> None:
        """The process in the container exits on its own (no engine call recorded)."""
        self._state(container_id, "exited", exit_code=1)

    # --- Engine ------------------------------------------------------------------

    def ping(self) -> None:
        return None

    def image(self, ref: str) -> Image | None:
        return self.images.get(ref)

    def pull(self, ref: str, auth: RegistryCredentials | None, progress: Progress) -> Image:
        raise EngineError(f"pulling {ref}: the fake engine has no registry")

    def registry_digest(self, ref: str, auth: RegistryCredentials | None) -> str:
        raise EngineError(f"asking the registry about {ref}: the fake engine has none")

    def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        self.networks.add(name)

    def remove_network(self, name: str) -> None:
        self.networks.discard(name)

    def volumes(self, labels: dict[str, str]) -> list[str]:
        return []  # the fake runs no Compose, so it has no Compose volumes

    def remove_volume(self, name: str) -> None:
        self.calls.append(("remove_volume", name))

    def prune_pins(self) -> list[str]:
        return []  # the fake mounts nothing, so it pins nothing

    def create(self, spec: ContainerSpec) -> Container:
        self.calls.append(("create", spec.name))
        image = self.images.get(spec.image)
        if image is None:
            raise EngineError(f"creating container {spec.name}: no such image {spec.image}")
        if any(box.container.name == spec.name for box in self.boxes.values()):
            raise EngineError(f"creating container {spec.name}: the name is in use")
        if spec.network not in self.networks:
            raise EngineError(f"creating container {spec.name}: network {spec.network} not found")
        ports = {(p.container, p.protocol): p.host or 40000 + p.container for p in spec.ports}
        container = Container(
            id=f"c{next(self._ids):011d}",
            name=spec.name,
            state="created",
            health=None,
            labels=dict(spec.labels),
            image_id=image.id,
            ports=ports,
        )
        self.boxes[container.id] = FakeContainer(container, spec)
        return container

    def start(self, container_id: str) -> None:
        self.calls.append(("start", container_id))
        self._state(container_id, "running", exit_code=None)

    def stop(self, container_id: str, timeout: int) -> None:
        self.calls.append(("stop", container_id))
        self._state(container_id, "exited", exit_code=0)

    def pause(self, container_id: str) -> None:
        self.calls.append(("pause", container_id))
        self._state(container_id, "paused", exit_code=None)

    def unpause(self, container_id: str) -> None:
        self.calls.append(("unpause", container_id))
        self._state(container_id, "running", exit_code=None)

    def remove(self, container_id: str) -> None:
        self.calls.append(("remove", container_id))
        self.boxes.pop(container_id, None)

    def get(self, container_id: str) -> Container | None:
        box = self.boxes.get(container_id)
        return None if box is None else box.container

    def container_env(self, container_id: str) -> dict[str, str]:
        return dict(self._box(container_id).spec.env)

    def containers(self, labels: dict[str, str]) -> list[Container]:
        return [
            box.container
            for box in self.boxes.values()
            if all(box.container.labels.get(k) == v for k, v in labels.items())
        ]

    def exec(
        self,
        container_id: str,
        command: list[str],
        *,
        timeout_s: float | None = None,
        keep: int = EXEC_KEEP,
    ) -> tuple[int, str]:
        return (0, "") if self._box(container_id).container.running else (1, "not running")

    def logs(self, container_id: str, tail: int) -> str:
        return ""

    def last_exit_code(self, container_id: str) -> int | None:
        return self._box(container_id).container.exit_code

    def _box(self, container_id: str) -> FakeContainer:
        box = self.boxes.get(container_id)
        if box is None:
            raise EngineError(f"no such container: {container_id}")
        return box

    def _state(self, container_id: str, state: str, *, exit_code: int | None) -> None:
        box = self._box(container_id)
        box.container = replace(box.container, state=state, exit_code=exit_code)
