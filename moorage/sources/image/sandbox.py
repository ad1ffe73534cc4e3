"""The ``image`` kind in a restore drill's sandbox (SPEC section 10): the deployed image
run once more, apart from the live container, and its own health check through
``docker exec`` (the sandbox publishes no port).

It never touches the workload's own containers, network or host ports, and never pulls:
a drill runs exactly what was deployed, from the local image. What the container or its
check printed is passed on marked (``moorage.program_output``), after the words that say
how the check ended.
"""

from __future__ import annotations

import dataclasses
import time

from moorage import program_output
from moorage.errors import DeployFailed
from moorage.plugins.spec import DeployContext, Sandbox
from moorage.sources.image import plan
from moorage.sources.image.config import HealthCheck, ImageConfig
from moorage.sources.stage import http_probe


def start(ctx: DeployContext, config: ImageConfig, sandbox: Sandbox) -> dict[str, str]:
    """Create and start the sandbox's one container from the deployed image id."""
    artifact = ctx.workload.artifact or {}
    image = str(artifact.get("image_id") or config.image)
    if ctx.engine.image(image) is None:
        raise DeployFailed(f"the deployed image {image} is no longer on this host")
    ctx.engine.ensure_network(sandbox.network, sandbox.labels)
    view = dataclasses.replace(ctx.workload, volumes=sandbox.volumes)
    spec = plan.container_spec(
        view,
        config,
        deployment_id=sandbox.id,
        image=image,
        publish_addr=ctx.settings.publish_addr,
        extra_labels={},
    )
    spec = dataclasses.replace(
        spec,
        name=sandbox.name(),
        labels=dict(sandbox.labels),
        network=sandbox.network,
        aliases=(ctx.workload.name,),
        ports=(),
        restart_policy="no",
    )
    created = ctx.engine.create(spec)
    ctx.log(f"created {spec.name} from {image[:19]} on {sandbox.network}, no published port")
    ctx.engine.start(created.id)
    return {"": created.id}


def healthy(ctx: DeployContext, config: ImageConfig, container_id: str, timeout: float) -> str:
    """Wait (at most the health check's own timeout, or ``timeout`` without one) until the
    container passes the workload's health check; raise DeployFailed with the last answer."""
    health = config.health or HealthCheck()
    deadline = time.monotonic() + (health.timeout_seconds if config.health else timeout)
    started = time.monotonic()
    last = ""
    while True:
        container = ctx.engine.get(container_id)
        if container is None:
            raise DeployFailed("the sandbox container disappeared")
        if container.state in ("exited", "dead"):
            tail = program_output.marked(ctx.engine.logs(container_id, 20).strip()[-500:])
            if tail:
                raise DeployFailed(
                    f"the container exited ({container.exit_code}); its last output:\n{tail}"
                )
            raise DeployFailed(f"the container exited ({container.exit_code})")
        ok, last = _probe(ctx, config, health, container.health, container_id, started)
        if ok:
            return last
        if time.monotonic() >= deadline:
            raise DeployFailed(f"not healthy in time: {last}")
        time.sleep(health.interval_seconds)


def _probe(
    ctx: DeployContext,
    config: ImageConfig,
    health: HealthCheck,
    docker_health: str | None,
    container_id: str,
    started: float,
) -> tuple[bool, str]:
    if health.cmd:
        code, output = ctx.engine.exec(container_id, list(health.cmd))
        return code == 0, _with_output(f"`{' '.join(health.cmd)}` exited {code}", output)
    if health.http:
        port = health.port or next((p.container for p in config.ports if p.protocol == "tcp"), None)
        if port is None:
            return False, "an http health check needs a tcp port"
        code, output = ctx.engine.exec(container_id, http_probe(port, health.http))
        return code == 0, _with_output(f"GET {health.http} on port {port}: exit {code}", output)
    if docker_health is not None:
        return docker_health == "healthy", f"the image's HEALTHCHECK says {docker_health}"
    waited = time.monotonic() - started
    return waited >= health.grace_seconds, f"running for {waited:.0f} s"


def _with_output(said: str, output: str) -> str:
    """How a probe ended, then the end of what it printed, marked, on the lines below."""
    printed = program_output.marked(output.strip()[-2000:])
    return f"{said}; its output:\n{printed}" if printed else said
