"""The image kind's container as a Compose service, so one table judges both kinds. Pure."""

from __future__ import annotations

from typing import Any

from moorage.runtime.engine import ContainerSpec


def service_of(spec: ContainerSpec) -> dict[str, Any]:
    """A ``ContainerSpec`` as the Compose model, so one table judges both kinds.

    Every field of ``ContainerSpec`` is written here (a unit test holds it to that): a
    field added to the spec must say what it is in Compose's terms.
    """
    service = {
        "container_name": spec.name,
        "image": spec.image,
        "labels": dict(spec.labels),
        "networks": {spec.network: {"aliases": list(spec.aliases)}},
        "command": list(spec.command) if spec.command is not None else None,
        "environment": dict(spec.env),
        "ports": [
            {
                "target": p.container,
                "published": p.host,
                "protocol": p.protocol,
                "host_ip": p.host_ip,
            }
            for p in spec.ports
        ],
        "volumes": [
            {"type": "bind", "source": m.source, "target": m.target, "read_only": m.read_only}
            for m in spec.mounts
        ],
        "init": spec.init,
        "stop_grace_period": f"{spec.stop_timeout}s",
        "restart": spec.restart_policy,
    }
    return {
        "services": {"container": service},
        "networks": {spec.network: {"external": True, "name": spec.network}},
    }


SPEC_FIELDS = frozenset(
    {"name", "image", "labels", "network", "aliases", "command", "env", "ports", "mounts"}
    | {"init", "stop_timeout", "restart_policy"}
)
"""The ``ContainerSpec`` fields ``service_of`` writes."""
