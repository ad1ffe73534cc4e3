"""Zero-downtime deploys of a stack's routed services (SPEC section 12), the way
``docker-rollout`` does it with plain Compose.

A service a domain routes to is not recreated in place. For each such service:

1. ``up -d --no-deps --no-recreate --scale S=<n+1> S`` starts one container of the new
   version beside the running one (Compose keeps the old container, ``--no-recreate``,
   and makes the new one from the new file); the proxy keeps routing to the old one
   (``DeployContext.hold_routes``), so the candidate gets no request;
2. the candidate must settle as a deploy does (running, healthy where it has a check);
3. the proxy switches to it (``DeployContext.switch``: loaded, then a drain), and the
   old containers are stopped and removed.

A candidate that fails is removed and the previous file written back: the old
container never stopped, so no request failed and none reached the candidate. The rest
of the stack is then brought up as a deploy does (``up -d``): the routed services already
run the new file, so Compose leaves them alone.

A service can be rolled out so only when it has no ``container_name`` and publishes no
fixed host port (two containers could not both hold either); ``eligible`` says which.
Such a service, and a stack deployed for the first time, are recreated in place with the
routes held (the proxy holds requests while nothing answers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moorage.errors import DeployFailed, MoorageError
from moorage.plugins.spec import DeployContext
from moorage.runtime.compose import failed_run
from moorage.runtime.engine import Container

SERVICE_LABEL = "com.docker.compose.service"
STOP_SECONDS = 10


def _fixed_host_port(entry: Any) -> bool:
    """Whether one ``ports`` entry names a host port (``[IP:]HOST:CONTAINER``)."""
    if isinstance(entry, dict):
        return bool(entry.get("published"))
    if isinstance(entry, int):
        return False
    text = str(entry).partition("/")[0]
    if text.startswith("["):  # [::1]:HOST:CONTAINER
        text = text.split("]", 1)[1].lstrip(":")
    parts = text.split(":")
    host = parts[-2] if len(parts) >= 2 else ""
    return host != ""


def eligible(model: dict[str, Any], services: list[str]) -> list[str]:
    """The ``services`` that can run twice side by side (see the module docstring)."""
    defined = model.get("services") if isinstance(model.get("services"), dict) else {}
    assert isinstance(defined, dict)
    out = []
    for name in services:
        service = defined.get(name)
        if not isinstance(service, dict) or service.get("container_name"):
            continue
        if any(_fixed_host_port(p) for p in service.get("ports") or []):
            continue
        out.append(name)
    return out


def roll(
    ctx: DeployContext,
    service: str,
    running: Callable[[], list[Container]],
    compose: Callable[..., tuple[int, str]],
    settle: Callable[[Callable[[], list[Container]]], str | None],
) -> None:
    """Start ``service``'s new version beside its running containers, switch the proxy to
    it once it settled, then stop and remove the old ones. ``running`` lists the
    project's containers, ``compose`` runs Compose on the workload's files, ``settle``
    waits like a deploy. Raises DeployFailed (the candidate removed, the old ones
    untouched)."""

    def of_service() -> list[Container]:
        return [c for c in running() if c.labels.get(SERVICE_LABEL) == service]

    # Compose 1.x counts stopped containers too: with one left, ``--scale n+1`` would
    # start it (the old config) instead of making a new one. They serve nothing: go.
    for c in of_service():
        if not c.running:
            ctx.engine.remove(c.id)
    old = of_service()
    before = {c.id for c in old}
    scale = f"{service}={len(old) + 1}"
    new: list[Container] = []

    def drop_new() -> None:
        for c in new:
            try:
                ctx.engine.remove(c.id)
            except MoorageError as exc:
                ctx.log(f"service {service}: could not remove {c.name}: {exc.message}")

    try:
        code, output = compose("up", "-d", "--no-deps", "--no-recreate", "--scale", scale, service)
        new = [c for c in of_service() if c.id not in before]
        if code != 0 or not new:
            said = failed_run("up", code, output)
            raise DeployFailed(f"service {service}: no new container beside the old one: {said}")
        ctx.log(f"service {service}: started {new[0].name} beside {len(old)} running")
        failure = settle(lambda: [c for c in of_service() if c.id in {n.id for n in new}])
        if failure is not None:
            raise DeployFailed(f"service {service}: {failure}")
    except DeployFailed:
        drop_new()
        raise
    except MoorageError as exc:  # the engine failed under us: the old one still serves
        drop_new()
        raise DeployFailed(f"service {service}: {exc.message}") from exc
    ctx.switch(new[0].id)
    for c in old:  # switched: from here the new one serves whatever happens to the old
        try:
            ctx.engine.stop(c.id, STOP_SECONDS)
            ctx.engine.remove(c.id)
        except MoorageError as exc:
            ctx.log(f"service {service}: could not remove {c.name}: {exc.message}")
    ctx.log(f"service {service}: switched to {new[0].name}; removed the old container")
