"""What the policy judges: the model, the scope the workload owns, a row of the table, and
the reading of a Compose model every rule shares. Pure."""

from __future__ import annotations

import dataclasses
import os.path
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Model:
    """A workload's Docker configuration in Compose's vocabulary."""

    resolved: dict[str, Any]
    """What Docker will run: top-level ``services``, ``volumes``, ``networks``, ``secrets``..."""
    written: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The Compose file as written (aliases expanded, nothing interpolated), or ``{}``."""


@dataclass(frozen=True)
class Scope:
    """What the workload owns, so asking for it reaches nothing of the host's."""

    directory: str
    """The workload's own directory: Moorage writes every file in it, so reads inside are fine."""
    publish_addr: str
    """``MOORAGE_PUBLISH_ADDR``: the one host address ports may be published on."""
    mounts: tuple[str, ...] = ()
    """Host paths of the workload's Moorage volumes (checked by the volume rules)."""
    networks: frozenset[str] = frozenset()
    """Docker networks Moorage creates for the workload's project and stage."""
    project: str = ""
    """The Compose project the model was resolved under: ``<project>_<key>`` is the name
    Compose v2 prints for the project's own networks and volumes."""


Finding = tuple[str, str]  # (where: a service, or "volumes.<name>" and so on; what exactly)
Find = Callable[[Model, Scope], Iterator[Finding]]


@dataclass(frozen=True)
class Rule:
    """One row of the policy: a host power, how it is recognised and why it reaches the host."""

    name: str
    checks: str
    why: str
    find: Find


def each_service(model: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    services = model.get("services")
    if isinstance(services, dict):
        for name, service in services.items():
            if isinstance(service, dict):
                yield str(name), service


def each_entry(model: dict[str, Any], key: str) -> Iterator[tuple[str, dict[str, Any]]]:
    section = model.get(key)
    if isinstance(section, dict):
        for name, item in section.items():
            yield str(name), item if isinstance(item, dict) else {}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "y", "on", "1")
    return bool(value)


def is_set(value: Any) -> bool:
    """Present and not empty: ``cap_add: []`` asks for nothing."""
    return value not in (None, "", [], {})


def inside(path: str, base: str) -> bool:
    if not base:
        return False
    base = os.path.normpath(base)
    return os.path.commonpath([os.path.normpath(path), base]) == base


def host_path(path: str, scope: Scope) -> str:
    return os.path.normpath(os.path.join(scope.directory, os.path.expanduser(path)))
