"""Networks and volumes over the Docker API: found by exact name, one network per name
(Docker 20.10 and older let two creates of one name both succeed), removed only when
no container uses them.

Each function takes the SDK client and runs inside the caller's ``answers.mapped``;
``engine.py`` serializes creates and removes of one name in this process.
"""

from __future__ import annotations

import itertools
from typing import Any

import docker
import docker.errors


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


def ensure(c: docker.DockerClient, name: str, labels: dict[str, str]) -> None:
    """Create the bridge network ``name`` unless one exists, and leave exactly one.

    Found by exact name (Docker's name filter matches substrings). After a create the
    name is looked up again and a duplicate another process made meanwhile is removed;
    every racer keeps the same one (``_dedupe_networks``). The engine's duplicates left
    by older releases are healed the same way.
    """
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


def remove(c: docker.DockerClient, name: str) -> None:
    """Remove every network of exactly this name that no container uses."""
    for network in _networks_named(c, name):
        _remove_unused_network(c, network["Id"])


def volumes(c: docker.DockerClient, labels: dict[str, str]) -> list[str]:
    """Names of the volumes that carry every one of ``labels``, sorted."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    found = c.api.volumes(filters=filters)
    return sorted(
        v["Name"]
        for v in (found or {}).get("Volumes") or []
        if all((v.get("Labels") or {}).get(k) == val for k, val in labels.items())
    )


def remove_volume(c: docker.DockerClient, name: str) -> None:
    """Remove the volume; one already gone is fine."""
    try:
        c.api.remove_volume(name)
    except docker.errors.NotFound:
        pass
