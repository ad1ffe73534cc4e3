"""What the Docker SDK answers, in Moorage's terms: its errors as ``EngineError`` or
``EngineUnavailable`` (``mapped``), its container answers as ``runtime.engine.Container``.

Nothing here calls the engine; ``engine.py`` does, inside ``mapped``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker.errors
import requests.exceptions

from moorage.errors import EngineError, EngineUnavailable
from moorage.runtime.engine import Container


@contextmanager
def mapped(action: str) -> Iterator[None]:
    """Turn what the SDK or ``requests`` raises inside into ``EngineError``, or
    ``EngineUnavailable`` when the daemon cannot be reached; ``action`` prefixes the message."""
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


def container_of(attrs: dict[str, Any]) -> Container:
    """A container from ``docker inspect``'s answer."""
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


def summary_of(summary: dict[str, Any]) -> Container:
    """A container from a list entry: the same facts as an inspect, read off the summary."""
    status = summary.get("Status") or ""
    exit_match = _EXIT.match(status)
    health_match = _HEALTH.search(status)
    health = None
    if health_match:
        found = health_match.group(1)
        health = "starting" if found == "health: starting" else found
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
