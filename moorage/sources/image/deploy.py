"""Deploy, teardown, reconcile and logs of the ``image`` kind, through the engine seam.

Never leaves a workload with nothing serving when something served before: a
failed deploy removes the new container and restarts the old one. A new container
never answers on the workload's fixed host ports before it passed its health check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moorage.errors import DeployFailed, EngineError
from moorage.plugins.spec import DeployContext, HostPower, WorkloadView
from moorage.runtime.engine import (
    LABEL_DEPLOYMENT,
    LABEL_WORKLOAD,
    Container,
    ContainerSpec,
    Image,
)
from moorage.settings import Settings
from moorage.sources import stage
from moorage.sources.image import plan
from moorage.sources.image.config import ImageConfig
from moorage.sources.image.health import wait_healthy
from moorage.sources.policy.image_service import service_of
from moorage.sources.policy.model import Model, Scope
from moorage.sources.policy.table import review
from moorage.store.states import WorkloadStatus


def _runnable(ref: str, image: Image) -> str:
    """What Docker creates the container from: ``ref``, except a local image named with
    its id (``name:tag@<image id>``, see ``promoted``), which Docker knows only by the id."""
    return image.id if ref.partition("@")[2] == image.id else ref


def _ensure_image(ctx: DeployContext, config: ImageConfig, ref: str) -> Image:
    image = None if ctx.pull else ctx.engine.image(ref)
    if image is not None:
        ctx.log(f"image {ref} is present ({image.id[:19]})")
        return image
    creds = config.credentials(ref)
    ctx.log(f"pulling {ref}" + (f" as {creds.username}" if creds else ""))
    try:
        return ctx.engine.pull(ref, creds, ctx.log)
    except EngineError as exc:
        raise DeployFailed(exc.message) from None


def host_powers(workload: WorkloadView, config: ImageConfig, settings: Settings) -> list[HostPower]:
    """The policy's verdict on the container a deploy of ``workload`` would create."""
    spec = plan.container_spec(
        workload,
        config,
        deployment_id="dp_policy",
        image=config.image,
        publish_addr=settings.publish_addr,
        extra_labels=dict(settings.container_labels),
    )
    scope = Scope(
        directory="",
        publish_addr=settings.publish_addr,
        mounts=tuple(str(v.host_path) for v in workload.volumes),
        networks=frozenset({spec.network}),
    )
    return review(Model(service_of(spec)), scope)


def _prepare_volumes(ctx: DeployContext) -> None:
    for volume in ctx.workload.volumes:
        if volume.scope == "absolute":
            if not volume.host_path.is_dir():
                raise DeployFailed(
                    f"volume {volume.name}: {volume.host_path} does not exist; create it first"
                )
            continue
        volume.host_path.mkdir(parents=True, exist_ok=True)


def _mine(ctx: DeployContext) -> list[Container]:
    return ctx.engine.containers({LABEL_WORKLOAD: ctx.workload.id})


def _create(ctx: DeployContext, spec: ContainerSpec, labels: dict[str, str]) -> Container:
    """Create the container; if a teardown in this stage just removed the shared network
    (it holds another workload's lock, not ours), or another process's racing create left
    the name ambiguous, make sure of the network again and retry once."""
    try:
        return ctx.engine.create(spec)
    except EngineError as exc:
        if "network" not in exc.message or not (
            "not found" in exc.message or "ambiguous" in exc.message
        ):
            raise
        ctx.engine.ensure_network(spec.network, labels)
        return ctx.engine.create(spec)


def _check_candidate(
    ctx: DeployContext,
    config: ImageConfig,
    spec: ContainerSpec,
    network_labels: dict[str, str],
    healthy: Callable[[str], None],
) -> None:
    """Run the new version beside the old one, on loopback ports the engine picks, until
    it is healthy; remove it either way. The old container keeps the workload's ports
    (and its name on the network) throughout: a failing candidate never answers there."""
    candidate = plan.candidate_spec(spec)
    created: Container | None = None
    try:
        created = _create(ctx, candidate, network_labels)
        ctx.engine.start(created.id)
        ctx.log(f"started the candidate {candidate.name} on a port of its own")
        healthy(created.id)
    except (DeployFailed, EngineError) as exc:
        ctx.log(f"the candidate failed: {exc.message}")
        if created is not None:
            ctx.engine.remove(created.id)
            ctx.log(f"removed the candidate {candidate.name}; the previous container kept serving")
        raise DeployFailed(exc.message) from None
    ctx.engine.stop(created.id, config.stop_timeout)
    ctx.engine.remove(created.id)
    ctx.log(f"the candidate passed; removed {candidate.name}")


def deploy(ctx: DeployContext, config: ImageConfig) -> dict[str, Any]:
    """Start the new container, health-check it, then remove the old one.

    When the new one needs host ports the old one holds, it is first health-checked as a
    candidate on ports of its own (``_check_candidate``); only a candidate that passed
    makes the old one stop, and the container that then takes the ports is checked again.
    """
    engine, workload = ctx.engine, ctx.workload
    image = _ensure_image(ctx, config, config.image)
    _prepare_volumes(ctx)
    labels = stage.workload_labels(workload, ctx.labels)
    network = stage.network_name(workload.project, workload.stage)
    network_labels = {k: v for k, v in labels.items() if k != LABEL_WORKLOAD}
    engine.ensure_network(network, network_labels)
    spec = plan.container_spec(
        workload,
        config,
        deployment_id=ctx.deployment_id,
        image=_runnable(config.image, image),
        publish_addr=ctx.settings.publish_addr,
        extra_labels=ctx.labels,
    )

    def healthy(container_id: str) -> None:
        wait_healthy(
            engine,
            container_id,
            config,
            image_has_healthcheck=image.has_healthcheck,
            publish_addr=ctx.settings.publish_addr,
            log=ctx.log,
        )

    old = _mine(ctx)
    wanted_ports = plan.fixed_host_ports(spec)
    blocking = [
        c
        for c in old
        if c.running and {(port, proto) for (_, proto), port in c.ports.items()} & wanted_ports
    ]
    stopped: list[Container] = []
    if blocking:
        ctx.log("the new container needs host ports the old one holds: checking it first")
        _check_candidate(ctx, config, spec, network_labels, healthy)
        for c in blocking:
            engine.stop(c.id, config.stop_timeout)
            stopped.append(c)
            ctx.log(f"stopped {c.name}")
        ctx.fault("deploy.after_stop")
    new: Container | None = None
    try:
        new = _create(ctx, spec, network_labels)
        ctx.log(f"created {spec.name}")
        engine.start(new.id)
        ctx.log(f"started {spec.name}")
        healthy(new.id)
    except (DeployFailed, EngineError) as exc:
        reason = exc.message
        ctx.log(f"deploy failed: {reason}")
        if new is not None:
            engine.remove(new.id)
            ctx.log(f"removed {spec.name}")
        for c in stopped:
            engine.start(c.id)
            ctx.log(f"started the previous container {c.name} again")
        raise DeployFailed(reason) from None
    ctx.switch(new.id)  # the proxy routes to the new one before the old one stops
    for c in old:
        if c.running and c not in stopped:
            engine.stop(c.id, config.stop_timeout)
        engine.remove(c.id)
        ctx.log(f"removed the previous container {c.name}")
    digest = repo_digest(config.image, image.digests)
    return {
        "image": config.image,
        "image_id": image.id,
        "digest": digest,
        "container": spec.name,
        "deployment": ctx.deployment_id,
        "urls": published_urls(engine.get(new.id), ctx.settings.publish_addr),
    }


def repo_digest(ref: str, digests: tuple[str, ...]) -> str | None:
    """The ``repo@sha256:...`` of ``ref``'s repository among an image's repo digests."""
    repo = ref.partition("@")[0]
    if repo.rfind(":") > repo.rfind("/"):
        repo = repo[: repo.rfind(":")]
    return next((d for d in digests if d.partition("@")[0] == repo), None)


def teardown(ctx: DeployContext) -> None:
    for c in _mine(ctx):
        ctx.engine.remove(c.id)
        ctx.log(f"removed {c.name}")
    ctx.engine.remove_network(stage.network_name(ctx.workload.project, ctx.workload.stage))


def status(ctx: DeployContext) -> WorkloadStatus:
    containers = _mine(ctx)
    if any(c.running for c in containers):
        return WorkloadStatus.RUNNING
    if any(c.state in ("restarting", "dead") or (c.exit_code or 0) != 0 for c in containers):
        return WorkloadStatus.FAILED
    return WorkloadStatus.STOPPED


def _recorded(ctx: DeployContext) -> dict[str, Any] | None:
    """The artifact of the last good deployment, if it names one (never-deployed: None)."""
    artifact = ctx.workload.artifact
    return artifact if artifact and artifact.get("deployment") else None


def _sort(ctx: DeployContext, artifact: dict[str, Any]) -> tuple[Container | None, list[Container]]:
    """The container of the recorded deployment, if any, and every other one."""
    containers = _mine(ctx)
    good = next(
        (c for c in containers if c.labels.get(LABEL_DEPLOYMENT) == artifact["deployment"]),
        None,
    )
    return good, [c for c in containers if c is not good]


def _run_recorded(
    ctx: DeployContext,
    config: ImageConfig,
    artifact: dict[str, Any],
    good: Container | None,
    say: str,
) -> Container:
    """Make the recorded deployment's container run: unpause or start it when it runs the
    artifact's image, else (re)create it from the artifact's image and ``config`` (which
    the caller passes as deployed, never as edited since)."""
    engine = ctx.engine
    if good is not None and artifact.get("image_id") not in (None, good.image_id):
        engine.remove(good.id)
        ctx.log(f"{say}removed {good.name}: it does not run the deployed image")
        good = None
    if good is not None:
        if good.state == "paused":
            engine.unpause(good.id)  # e.g. left frozen by a capture the process died in
            ctx.log(f"{say}unpaused {good.name}")
        elif not good.running:
            engine.start(good.id)
            ctx.log(f"{say}started {good.name} again")
        return good
    _prepare_volumes(ctx)
    image = plan.image_to_run(config, artifact)
    labels = stage.workload_labels(ctx.workload, ctx.labels)
    network_labels = {k: v for k, v in labels.items() if k != LABEL_WORKLOAD}
    ctx.engine.ensure_network(
        stage.network_name(ctx.workload.project, ctx.workload.stage), network_labels
    )
    spec = plan.container_spec(
        ctx.workload,
        config,
        deployment_id=str(artifact["deployment"]),
        image=image,
        publish_addr=ctx.settings.publish_addr,
        extra_labels=ctx.labels,
    )
    created = _create(ctx, spec, network_labels)
    engine.start(created.id)
    ctx.log(f"{say}recreated {spec.name} from {image[:19]}")
    return created


def reconcile(ctx: DeployContext, config: ImageConfig) -> bool:
    """Keep exactly the container of the last good deployment, running."""
    artifact = _recorded(ctx)
    if artifact is None:
        return False  # never deployed: nothing to bring back, and no container to make
    good, others = _sort(ctx, artifact)
    changed = False
    for c in others:
        if good is not None or not c.running:
            ctx.engine.remove(c.id)
            ctx.log(f"reconcile: removed stray container {c.name}")
            changed = True
    if good is None and any(c.running for c in others):
        return changed  # a running container of an unrecorded deploy: leave it serving
    if good is not None and good.running:
        return changed
    _run_recorded(ctx, config, artifact, good, "reconcile: ")
    return True


def redeploy(ctx: DeployContext, config: ImageConfig) -> dict[str, Any]:
    """Run the recorded artifact again and wait until it is healthy, as a deploy does.

    A stopped container of that deployment starts again as it is (its downtime does not
    depend on the data); a missing one is recreated. Every other container of the
    workload is removed, as a deploy removes the previous one.
    """
    artifact = _recorded(ctx)
    if artifact is None:
        raise DeployFailed("this workload has no deployment to run again")
    good, others = _sort(ctx, artifact)
    for c in others:
        ctx.engine.remove(c.id)
        ctx.log(f"removed {c.name}, which the last good deployment does not run")
    container = _run_recorded(ctx, config, artifact, good, "")
    image = ctx.engine.image(container.image_id) if container.image_id else None
    wait_healthy(
        ctx.engine,
        container.id,
        config,
        image_has_healthcheck=image is not None and image.has_healthcheck,
        publish_addr=ctx.settings.publish_addr,
        log=ctx.log,
    )
    return {**artifact, "container": container.name}


def published_urls(container: Container | None, publish_addr: str) -> list[str]:
    """Where the deployed container answers: one http URL per published tcp port."""
    if container is None:
        return []
    host = f"[{publish_addr}]" if ":" in publish_addr else publish_addr
    return [
        f"http://{host}:{port}/"
        for (_, proto), port in sorted(container.ports.items())
        if proto == "tcp"
    ]


def logs(ctx: DeployContext, tail: int) -> str:
    containers = sorted(_mine(ctx), key=lambda c: not c.running)
    return ctx.engine.logs(containers[0].id, tail) if containers else ""


def promoted(config: dict[str, Any], artifact: dict[str, Any]) -> dict[str, Any]:
    """Run exactly what the source ran, named so a person reads it: the registry's
    ``name@sha256:<digest>`` when it gave one; for a local image (built or loaded here,
    no digest) ``name:tag@sha256:<image id>``, which ``images.find`` resolves by the id
    only while the image still carries that repository (or no name); a bare id when the
    source named none."""
    if artifact.get("digest"):
        return {**config, "image": artifact["digest"]}
    name = str(artifact.get("image") or "").split("@", 1)[0]
    image_id = str(artifact["image_id"])
    if not name or name.startswith("sha256:"):
        return {**config, "image": image_id}
    return {**config, "image": f"{name}@{image_id}"}
