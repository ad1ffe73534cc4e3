"""``DockerEngine``: the ``Engine`` Protocol over the Docker SDK. Containers live here;
images are ``images.py``, networks and volumes ``networks.py``, and what the SDK
answers or raises becomes Moorage's types in ``answers.py``.

It must never let an SDK or ``requests`` exception escape: every call runs inside
``answers.mapped``, so everything becomes ``EngineError`` or, when the daemon cannot
be reached, ``EngineUnavailable``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import docker
import docker.errors
from docker.types import Mount

from moorage.errors import EngineError
from moorage.runtime.docker import exec_output, images, networks
from moorage.runtime.docker.answers import container_of, mapped, summary_of
from moorage.runtime.engine import (
    EXEC_KEEP,
    Container,
    ContainerSpec,
    ExecTimedOut,
    Image,
    Progress,
    RegistryCredentials,
)
from moorage.runtime.pins import Pins

T = TypeVar("T")
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
LABEL_PIN = "moorage.pin"  # moorage.pin.<n> = {"source", "base"}: what pin n must show


def free_port(host_ip: str) -> int:
    """A free tcp port on ``host_ip`` for a binding that names none, published as if it
    were fixed: Docker picks a new port at every start of a container that asks for "any
    port", and the proxy's upstream (SPEC section 12) and the published URL must survive
    a restart (a capture or a restore stops and starts the container). Another process
    may take the port before the container starts; that start then fails as a taken
    fixed port does."""
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host_ip, 0))
        return int(s.getsockname()[1])


class DockerEngine:
    """``Engine`` over the Docker API. Thread-safe: the SDK client is shared."""

    def __init__(
        self, base_url: str | None = None, timeout: int = 120, pins: Pins | None = None
    ) -> None:
        self._base_url = base_url or DEFAULT_SOCKET
        self._timeout = timeout
        self._pins = pins
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self._network_locks: dict[str, threading.Lock] = {}

    def _api(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                with mapped("connecting to Docker"):
                    self._client = docker.DockerClient(
                        base_url=self._base_url, version="auto", timeout=self._timeout
                    )
            return self._client

    def _call(self, action: str, fn: Callable[[docker.DockerClient], T]) -> T:
        with mapped(action):
            return fn(self._api())

    def ping(self) -> None:
        self._call("pinging Docker", lambda c: c.ping())

    def image(self, ref: str) -> Image | None:
        return self._call(f"inspecting image {ref}", lambda c: images.find(c, ref))

    def pull(self, ref: str, auth: RegistryCredentials | None, progress: Progress) -> Image:
        self._call(f"cannot pull {ref}", lambda c: images.pull(c, ref, auth, progress))
        image = self.image(ref)
        if image is None:
            raise EngineError(f"pulling {ref}: the image is still not present after the pull")
        return image

    def registry_digest(self, ref: str, auth: RegistryCredentials | None) -> str:
        return self._call(
            f"asking the registry about {ref}", lambda c: images.registry_digest(c, ref, auth)
        )

    @contextmanager
    def _network_lock(self, name: str) -> Iterator[None]:
        """One network create or remove per name at a time in this process: Docker itself
        lets two creates of one name both succeed."""
        with self._lock:
            lock = self._network_locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        """Create the bridge network ``name`` unless one exists, and leave exactly one
        (``networks.ensure``)."""
        with self._network_lock(name):
            self._call(f"creating network {name}", lambda c: networks.ensure(c, name, labels))

    def remove_network(self, name: str) -> None:
        """Remove every network of exactly this name that no container uses."""
        with self._network_lock(name):
            self._call(f"removing network {name}", lambda c: networks.remove(c, name))

    def volumes(self, labels: dict[str, str]) -> list[str]:
        return self._call("listing volumes", lambda c: networks.volumes(c, labels))

    def remove_volume(self, name: str) -> None:
        self._call(f"removing volume {name}", lambda c: networks.remove_volume(c, name))

    def create(self, spec: ContainerSpec) -> Container:
        ports: dict[str, tuple[str, int] | tuple[str]] = {}
        for p in spec.ports:
            host = p.host if p.host is not None or p.protocol != "tcp" else free_port(p.host_ip)
            ports[f"{p.container}/{p.protocol}"] = (
                (p.host_ip, host) if host is not None else (p.host_ip,)
            )
        labels = dict(spec.labels)
        mounts = []
        try:
            for index, m in enumerate(spec.mounts):
                source = m.source
                if m.base is not None and self._pins is not None:
                    labels[f"{LABEL_PIN}.{index}"] = json.dumps(
                        {"source": m.source, "base": m.base}
                    )
                    source = str(self._pins.pin(spec.name, index, Path(m.source), Path(m.base)))
                mounts.append(
                    Mount(target=m.target, source=source, type="bind", read_only=m.read_only)
                )
        except BaseException:
            if self._pins is not None:
                self._pins.unpin(spec.name)
            raise

        def create(c: docker.DockerClient) -> Container:
            host_config = c.api.create_host_config(
                port_bindings={k: [v] for k, v in ports.items()} or None,
                mounts=mounts or None,
                init=spec.init,
                restart_policy={"Name": spec.restart_policy},
                network_mode=spec.network,
            )
            networking = c.api.create_networking_config(
                {spec.network: c.api.create_endpoint_config(aliases=list(spec.aliases))}
            )
            created = c.api.create_container(
                image=spec.image,
                name=spec.name,
                command=list(spec.command) if spec.command is not None else None,
                environment=spec.env,
                labels=labels,
                ports=[(p.container, p.protocol) for p in spec.ports] or None,
                host_config=host_config,
                networking_config=networking,
                stop_timeout=spec.stop_timeout,
            )
            return container_of(c.api.inspect_container(created["Id"]))

        try:
            return self._call(f"creating container {spec.name}", create)
        except BaseException:
            if self._pins is not None:
                self._pins.unpin(spec.name)
            raise

    def start(self, container_id: str) -> None:
        """Start a container, pinning its volumes again first: the directory a path names
        may have changed since (a restore swaps it), and the pin must show the new one."""
        self._repin(container_id)
        self._call(f"starting container {container_id[:12]}", lambda c: c.api.start(container_id))

    def _repin(self, container_id: str) -> None:
        if self._pins is None:
            return
        attrs = self._call(
            f"inspecting container {container_id[:12]}",
            lambda c: c.api.inspect_container(container_id),
        )
        name = str(attrs.get("Name", "")).lstrip("/")
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        # Only pins the container binds: an image's own labels come along into the
        # container's (a ``LABEL moorage.pin.7=...`` in an image once had Moorage bind-mount
        # the host path it named), but no image can add a bind of a pin to the container.
        mounts = (attrs.get("HostConfig") or {}).get("Mounts") or []
        bound = {str(m.get("Source")) for m in mounts if isinstance(m, dict)}
        for key, value in labels.items():
            suffix = key.removeprefix(LABEL_PIN + ".")
            if key == suffix or not (suffix.isascii() and suffix.isdigit()):
                continue
            index = int(suffix)
            if str(self._pins.path(name, index)) not in bound:
                continue  # not a pin this container binds: an image's label, say
            try:
                wanted = json.loads(value)
                source, base = Path(wanted["source"]), Path(wanted["base"])
            except (ValueError, TypeError, KeyError) as exc:
                raise EngineError(
                    f"container {name} binds pin {index}, but its label {key}={value!r} is "
                    "not one Moorage wrote; recreate it (deploy again) to start it"
                ) from exc
            self._pins.pin(name, index, source, base)

    def prune_pins(self) -> list[str]:
        """Unpin containers that no longer exist (removed behind Moorage's back, or by a
        process that died); answer their names."""
        if self._pins is None:
            return []

        def names(c: docker.DockerClient) -> set[str]:
            return {n.lstrip("/") for s in c.api.containers(all=True) for n in s.get("Names") or []}

        existing = self._call("listing containers", names)
        pruned = []
        for name in self._pins.containers():
            if name not in existing:
                self._pins.unpin(name)
                pruned.append(name)
        return pruned

    def stop(self, container_id: str, timeout: int) -> None:
        self._call(
            f"stopping container {container_id[:12]}",
            lambda c: c.api.stop(container_id, timeout=timeout),
        )

    def pause(self, container_id: str) -> None:
        self._call(f"pausing container {container_id[:12]}", lambda c: c.api.pause(container_id))

    def unpause(self, container_id: str) -> None:
        self._call(
            f"unpausing container {container_id[:12]}", lambda c: c.api.unpause(container_id)
        )

    def remove(self, container_id: str) -> None:
        def remove(c: docker.DockerClient) -> str | None:
            try:
                name = str(c.api.inspect_container(container_id).get("Name", "")).lstrip("/")
                c.api.remove_container(container_id, force=True)
            except docker.errors.NotFound:
                return None
            return name

        name = self._call(f"removing container {container_id[:12]}", remove)
        if name and self._pins is not None:
            self._pins.unpin(name)

    def get(self, container_id: str) -> Container | None:
        def get(c: docker.DockerClient) -> Container | None:
            try:
                return container_of(c.api.inspect_container(container_id))
            except docker.errors.NotFound:
                return None

        return self._call(f"inspecting container {container_id[:12]}", get)

    def container_env(self, container_id: str) -> dict[str, str]:
        def env(c: docker.DockerClient) -> dict[str, str]:
            attrs = c.api.inspect_container(container_id)
            pairs = (attrs.get("Config") or {}).get("Env") or []
            return dict(str(item).partition("=")[::2] for item in pairs)

        return self._call(f"inspecting container {container_id[:12]}", env)

    def containers(self, labels: dict[str, str]) -> list[Container]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}

        def listing(c: docker.DockerClient) -> list[Container]:
            # One call, no inspect per container: the reconcile loop lists often.
            return [summary_of(s) for s in c.api.containers(all=True, filters=filters)]

        return self._call("listing containers", listing)

    def exec(
        self,
        container_id: str,
        command: list[str],
        *,
        timeout_s: float | None = None,
        keep: int = EXEC_KEEP,
    ) -> tuple[int, str]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        def run(c: docker.DockerClient) -> tuple[int, str]:
            exec_id = c.api.exec_create(container_id, command)["Id"]
            # The raw attach socket, read as it comes: at most ``keep`` bytes are held.
            sock = c.api.exec_start(exec_id, socket=True)
            try:
                first = exec_output.buffered(sock)
                output = exec_output.read(sock, keep, deadline, first)
            except OSError as exc:
                raise EngineError(f"reading the command's output: {exc}") from None
            finally:
                sock.close()
            if output.timed_out:
                raise ExecTimedOut(f"the command did not end within {timeout_s:g} s", output.text())
            code = c.api.exec_inspect(exec_id).get("ExitCode")
            return (code if code is not None else -1), output.text()

        return self._call(f"running a command in {container_id[:12]}", run)

    def last_exit_code(self, container_id: str) -> int | None:
        def last(c: docker.DockerClient) -> int | None:
            created = str(c.api.inspect_container(container_id).get("Created", ""))[:19]
            since = int(datetime.fromisoformat(created).replace(tzinfo=UTC).timestamp())
            code: int | None = None
            events = c.api.events(
                since=since,
                until=int(time.time()) + 1,
                filters={"container": container_id, "event": "die"},
                decode=True,
            )
            for event in events:
                value = (event.get("Actor") or {}).get("Attributes", {}).get("exitCode")
                if value is not None and str(value).lstrip("-").isdigit():
                    code = int(value)
            return code

        return self._call(f"reading the exits of {container_id[:12]}", last)

    def logs(self, container_id: str, tail: int) -> str:
        def logs(c: docker.DockerClient) -> str:
            data = c.api.logs(container_id, tail=tail, stdout=True, stderr=True)
            return bytes(data).decode(errors="replace")

        return self._call(f"reading logs of {container_id[:12]}", logs)
