"""Images over the Docker API: find one by exact reference, pull one, ask a registry for
a digest. A registry login goes only to the host it was saved for.

Each function takes the SDK client and runs inside the caller's ``answers.mapped``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
import docker.errors
from docker.utils import parse_repository_tag

from moorage.errors import EngineError
from moorage.runtime.engine import Image, RegistryCredentials


def auth_config(ref: str, auth: RegistryCredentials | None) -> dict[str, str] | None:
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


def _local_pin(c: docker.DockerClient, ref: str) -> dict[str, Any] | None:
    """``name[:tag]@sha256:<id>`` for an image built or loaded here, which no registry
    gave a digest (a promote or rollback writes such a reference, so the config names the
    image and pins it): the image whose id that is, when it still carries the name's
    repository (any tag: a tag may have moved since) or no name at all. An image known by
    another name is not found, so a config cannot show one name and run another image."""
    name, at, pin = ref.partition("@")
    if not at or not name:
        return None
    try:
        attrs = c.api.inspect_image(pin)
    except docker.errors.ImageNotFound:
        return None
    if attrs.get("Id") != pin:
        return None
    names = [*(attrs.get("RepoTags") or ()), *(attrs.get("RepoDigests") or ())]
    repo = _repository(_familiar(name))
    if names and repo not in {_repository(_familiar(str(n))) for n in names}:
        return None
    return dict(attrs)


def _repository(familiar: str) -> str:
    """``repo`` of a familiar ``repo:tag`` or ``repo@digest``."""
    name = familiar.partition("@")[0]
    last = name.rsplit("/", 1)[-1]
    return name[: name.rfind(":")] if ":" in last else name


def find(c: docker.DockerClient, ref: str) -> Image | None:
    """The image ``ref`` names exactly, or None (an image whose id merely starts with
    ``ref`` is not it). ``name@sha256:<id>`` also finds a local image by its id when it
    carries the name (``_local_pin``)."""
    try:
        attrs: dict[str, Any] | None = c.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        attrs = None
    if attrs is None or not _names_image(ref, attrs):
        attrs = _local_pin(c, ref)
        if attrs is None:
            return None
    health = (attrs.get("Config") or {}).get("Healthcheck") or {}
    test = health.get("Test") or []
    return Image(
        id=attrs["Id"],
        digests=tuple(attrs.get("RepoDigests") or ()),
        has_healthcheck=bool(test) and test[0] != "NONE",
    )


def pull(
    c: docker.DockerClient,
    ref: str,
    auth: RegistryCredentials | None,
    progress: Callable[[str], None],
) -> None:
    """Pull ``ref`` (``:latest`` when it names no tag), reporting each new status line;
    raises ``EngineError`` with the registry's error."""
    repo, tag = parse_repository_tag(ref)
    stream = c.api.pull(
        repo, tag=tag or "latest", stream=True, decode=True, auth_config=auth_config(ref, auth)
    )
    last = ""
    for event in stream:
        if "error" in event:
            raise EngineError(f"cannot pull {ref}: {event['error']}")
        line = " ".join(str(event[k]) for k in ("id", "status") if event.get(k))
        if line and line != last and "progress" not in event:
            progress(line)
            last = line


def registry_digest(c: docker.DockerClient, ref: str, auth: RegistryCredentials | None) -> str:
    """The digest the registry serves for ``ref`` now."""
    data = c.api.inspect_distribution(ref, auth_config=auth_config(ref, auth))
    return str(data["Descriptor"]["digest"])
