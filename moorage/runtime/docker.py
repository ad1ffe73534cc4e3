"""The Docker engine through the Docker SDK for Python; the only module that imports ``docker``.

It must never let an SDK or ``requests`` exception escape: everything becomes
``EngineError`` or, when the daemon cannot be reached, ``EngineUnavailable``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.types import Mount
from docker.utils import parse_repository_tag

from moorage.errors import EngineError, EngineUnavailable
from moorage.runtime.engine import Container, ContainerSpec, Image, Progress, RegistryCredentials
from moorage.runtime.pins import Pins

T = TypeVar("T")
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
LABEL_PIN = "moorage.pin"  # moorage.pin.<n> = {"source", "base"}: what pin n must show


@contextmanager
def _mapped(action: str) -> Iterator[None]:
    try:
        yield
    except docker.errors.APIError as exc:
        reason = exc.explanation or str(exc)
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise EngineError(f"{action}: {reason}") from None
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
        if isinstance(exc, docker.errors.DockerException) and "Connection" not in str(exc):
            raise EngineError(f"{action}: {exc}") from None
        raise EngineUnavailable(
            "the Docker engine is not reachable; is dockerd running? "
            "(set DOCKER_HOST if it listens elsewhere)"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise EngineUnavailable(f"{action}: the Docker engine did not answer ({exc})") from None


def _container(attrs: dict[str, Any]) -> Container:
    state = attrs.get("State") or {}
    ports: dict[tuple[int, str], int] = {}
    for key, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        for binding in bindings or []:
            if binding.get("HostPort"):
                ports[(int(port), proto or "tcp")] = int(binding["HostPort"])
                break
    health = (state.get("Health") or {}).get("Status")
    return Container(
        id=attrs["Id"],
        name=attrs.get("Name", "").lstrip("/"),
        state=state.get("Status", "unknown"),
        health=health,
        labels=dict((attrs.get("Config") or {}).get("Labels") or {}),
        image_id=attrs.get("Image", ""),
        ports=ports,
        exit_code=state.get("ExitCode"),
        restarts=int(attrs.get("RestartCount") or 0),
    )


_EXIT = re.compile(r"^Exited \((-?\d+)\)")
_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")


def _summary(summary: dict[str, Any]) -> Container:
    """A container from a list entry: the same facts as an inspect, read off the summary."""
    status = summary.get("Status") or ""
    exit_match = _EXIT.match(status)
    health_match = _HEALTH.search(status)
    health = None
    if health_match:
        health = "starting" if health_match.group(1).startswith("health") else health_match.group(1)
    ports: dict[tuple[int, str], int] = {}
    for port in summary.get("Ports") or []:
        if port.get("PublicPort"):
            ports.setdefault(
                (int(port["PrivatePort"]), port.get("Type", "tcp")), int(port["PublicPort"])
            )
    names = summary.get("Names") or [""]
    return Container(
        id=summary["Id"],
        name=names[0].lstrip("/"),
        state=summary.get("State", "unknown"),
        health=health,
        labels=dict(summary.get("Labels") or {}),
        image_id=summary.get("ImageID", ""),
        ports=ports,
        exit_code=int(exit_match.group(1)) if exit_match else None,
    )


def _auth_config(ref: str, auth: RegistryCredentials | None) -> dict[str, str] | None:
    """The login to send with ``ref``: only to the registry host it was saved for, never
    to another (an image moved to another host must not take the password along)."""
    if auth is None or not auth.serves(ref):
        return None
    return {
        "username": auth.username,
        "password": auth.password,
        "serveraddress": auth.server or "",
    }


_HUB_PREFIXES = ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/")


def _familiar(ref: str) -> str:
    """``ref`` as Docker lists it in ``RepoTags``/``RepoDigests``: Docker Hub's host and
    ``library/`` dropped, ``:latest`` when it names no tag, no tag beside a digest."""
    name, at, digest = ref.partition("@")
    tagged = ":" in name.rsplit("/", 1)[-1]
    if at and tagged:
        name = name[: name.rfind(":")]
    elif not at and not tagged:
        name += ":latest"
    first = name.split("/", 1)[0]
    if name.startswith("library/"):
        name = name[len("library/") :]
    elif "." in first or ":" in first or first == "localhost":
        name = next((name[len(p) :] for p in _HUB_PREFIXES if name.startswith(p)), name)
    return name + at + digest


def _names_image(ref: str, attrs: dict[str, Any]) -> bool:
    """Whether the image Docker answered for ``ref`` is the one ``ref`` names exactly: for
    a reference it has no tag for, Docker answers any image whose id starts with it."""
    if ref.startswith("sha256:"):
        return attrs.get("Id") == ref
    names = [*(attrs.get("RepoTags") or ()), *(attrs.get("RepoDigests") or ())]
    return _familiar(ref) in {_familiar(str(n)) for n in names}


def _networks_named(c: docker.DockerClient, name: str) -> list[dict[str, Any]]:
    """Networks whose name is exactly ``name``: Docker's ``name`` filter matches any name
    that contains it (``moorage_p_production_stack_default`` for ``moorage_p_production``)."""
    return [n for n in c.api.networks(names=[name]) or [] if n.get("Name") == name]


def _created(network: dict[str, Any]) -> tuple[str, str]:
    """A sortable creation time: Docker trims trailing zeros off the nanoseconds."""
    stamp = str(network.get("Created") or "")
    head, _, rest = stamp.partition(".")
    digits = "".join(itertools.takewhile(str.isdigit, rest))
    return head, digits.ljust(9, "0")


def _in_use(c: docker.DockerClient, network_id: str) -> bool:
    try:
        return bool(c.api.inspect_network(network_id).get("Containers"))
    except docker.errors.NotFound:
        return False


def _remove_unused_network(c: docker.DockerClient, network_id: str) -> None:
    if _in_use(c, network_id):
        return
    try:
        c.api.remove_network(network_id)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code not in (403, 409):  # a container joined it meanwhile
            raise


def _dedupe_networks(c: docker.DockerClient, name: str) -> None:
    """Leave one network named ``name``: the oldest one containers use, else the oldest
    (ties by id), so concurrent callers all keep the same. A duplicate a container
    already joined stays; Docker then refuses the name as ambiguous, as it should."""
    found = _networks_named(c, name)
    if len(found) < 2:
        return
    used = {n["Id"] for n in found if _in_use(c, n["Id"])}
    keeper = min(found, key=lambda n: (n["Id"] not in used, _created(n), n["Id"]))
    for network in found:
        if network["Id"] != keeper["Id"] and network["Id"] not in used:
            _remove_unused_network(c, network["Id"])


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
                with _mapped("connecting to Docker"):
                    self._client = docker.DockerClient(
                        base_url=self._base_url, version="auto", timeout=self._timeout
                    )
            return self._client

    def _call(self, action: str, fn: Callable[[docker.DockerClient], T]) -> T:
        with _mapped(action):
            return fn(self._api())

    def ping(self) -> None:
        self._call("pinging Docker", lambda c: c.ping())

    def image(self, ref: str) -> Image | None:
        def find(c: docker.DockerClient) -> Image | None:
            try:
                attrs = c.api.inspect_image(ref)
            except docker.errors.ImageNotFound:
                return None
            if not _names_image(ref, attrs):
                return None  # an image whose id merely starts with ``ref``
            health = (attrs.get("Config") or {}).get("Healthcheck") or {}
            test = health.get("Test") or []
            return Image(
                id=attrs["Id"],
                digests=tuple(attrs.get("RepoDigests") or ()),
                has_healthcheck=bool(test) and test[0] != "NONE",
            )

        return self._call(f"inspecting image {ref}", find)

    def pull(self, ref: str, auth: RegistryCredentials | None, progress: Progress) -> Image:
        repo, tag = parse_repository_tag(ref)
        auth_config = _auth_config(ref, auth)

        def pull(c: docker.DockerClient) -> None:
            stream = c.api.pull(
                repo, tag=tag or "latest", stream=True, decode=True, auth_config=auth_config
            )
            last = ""
            for event in stream:
                if "error" in event:
                    raise EngineError(f"cannot pull {ref}: {event['error']}")
                line = " ".join(str(event[k]) for k in ("id", "status") if event.get(k))
                if line and line != last and "progress" not in event:
                    progress(line)
                    last = line

        self._call(f"cannot pull {ref}", pull)
        image = self.image(ref)
        if image is None:
            raise EngineError(f"pulling {ref}: the image is still not present after the pull")
        return image

    def registry_digest(self, ref: str, auth: RegistryCredentials | None) -> str:
        auth_config = _auth_config(ref, auth)

        def ask(c: docker.DockerClient) -> str:
            data = c.api.inspect_distribution(ref, auth_config=auth_config)
            return str(data["Descriptor"]["digest"])

        return self._call(f"asking the registry about {ref}", ask)

    @contextmanager
    def _network_lock(self, name: str) -> Iterator[None]:
        """One network create or remove per name at a time in this process: Docker itself
        lets two creates of one name both succeed."""
        with self._lock:
            lock = self._network_locks.setdefault(name, threading.Lock())
        with lock:
            yield

    def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        """Create the bridge network ``name`` unless one exists, and leave exactly one.

        Found by exact name (Docker's name filter matches substrings). Docker 20.10 and
        older create a second network of a taken name (``CheckDuplicate`` only narrows the
        race), so after a create the name is looked up again and a duplicate another
        process made meanwhile is removed; every racer keeps the same one (``_dedupe_networks``).
        The engine's duplicates left by older releases are healed the same way.
        """

        def ensure(c: docker.DockerClient) -> None:
            found = _networks_named(c, name)
            if len(found) == 1:
                return
            if not found:
                try:
                    c.api.create_network(name, driver="bridge", labels=labels, check_duplicate=True)
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:  # 409: made meanwhile by another process
                        raise
            _dedupe_networks(c, name)

        with self._network_lock(name):
            self._call(f"creating network {name}", ensure)

    def remove_network(self, name: str) -> None:
        """Remove every network of exactly this name that no container uses."""

        def remove(c: docker.DockerClient) -> None:
            for network in _networks_named(c, name):
                _remove_unused_network(c, network["Id"])

        with self._network_lock(name):
            self._call(f"removing network {name}", remove)

    def volumes(self, labels: dict[str, str]) -> list[str]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        found = self._call("listing volumes", lambda c: c.api.volumes(filters=filters))
        return sorted(
            v["Name"]
            for v in (found or {}).get("Volumes") or []
            if all((v.get("Labels") or {}).get(k) == val for k, val in labels.items())
        )

    def remove_volume(self, name: str) -> None:
        def remove(c: docker.DockerClient) -> None:
            try:
                c.api.remove_volume(name)
            except docker.errors.NotFound:
                pass

        self._call(f"removing volume {name}", remove)

    def create(self, spec: ContainerSpec) -> Container:
        ports: dict[str, tuple[str, int] | tuple[str]] = {}
        for p in spec.ports:
            ports[f"{p.container}/{p.protocol}"] = (
                (p.host_ip, p.host) if p.host is not None else (p.host_ip,)
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
            return _container(c.api.inspect_container(created["Id"]))

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
        for key, value in labels.items():
            if key.startswith(LABEL_PIN + "."):
                index = int(key.rsplit(".", 1)[1])
                wanted = json.loads(value)
                self._pins.pin(name, index, Path(wanted["source"]), Path(wanted["base"]))

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
                return _container(c.api.inspect_container(container_id))
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
            return [_summary(s) for s in c.api.containers(all=True, filters=filters)]

        return self._call("listing containers", listing)

    def exec(self, container_id: str, command: list[str]) -> tuple[int, str]:
        def run(c: docker.DockerClient) -> tuple[int, str]:
            exec_id = c.api.exec_create(container_id, command)["Id"]
            output = c.api.exec_start(exec_id)
            code = c.api.exec_inspect(exec_id).get("ExitCode")
            return (code if code is not None else -1), output.decode(errors="replace")

        return self._call(f"running a command in {container_id[:12]}", run)

    def logs(self, container_id: str, tail: int) -> str:
        def logs(c: docker.DockerClient) -> str:
            data = c.api.logs(container_id, tail=tail, stdout=True, stderr=True)
            return bytes(data).decode(errors="replace")

        return self._call(f"reading logs of {container_id[:12]}", logs)
