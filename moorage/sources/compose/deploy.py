"""Deploy, teardown, reconcile and logs of the ``compose`` kind, through ``ComposeRunner``.

Files live in ``<data>/compose/<workload id>/``: the user's ``compose.yml``
(rewritten only when its hash changes), ``moorage.override.yml`` (labels and the
workload's env for every service) and ``moorage.env`` (kept for files that name it).

Env reaches every container byte for byte through the override's ``environment:``
(each ``$`` written ``$$``, the escape Compose v1 and v2 both document; an env file
cannot hold a line break and is read differently by each). After ``up`` every
container's environment is compared with the workload's: a key that did not arrive
exactly fails the deploy, naming the key.

A service that exits 0 by design is a success: one with ``restart: "no"``, or one
another service waits for with ``condition: service_completed_successfully``. The
override labels its containers ``moorage.one-shot``; settle, status and reconcile
take an exited-0 one-shot as done (never run again), and any other exit as a failure.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from moorage.errors import Busy, DeployFailed
from moorage.plugins.spec import DeployContext
from moorage.runtime.compose import failed_run
from moorage.runtime.engine import Container
from moorage.sources.compose import file as compose_file
from moorage.sources.compose import rollout, stack
from moorage.sources.stage import workload_labels
from moorage.store.states import WorkloadStatus

COMPOSE_FILE = compose_file.COMPOSE_FILE
OVERRIDE_FILE = "moorage.override.yml"
ENV_FILE = compose_file.ENV_FILE
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONE_SHOT_LABEL = "moorage.one-shot"
SETTLE_SECONDS = 60.0
# As with the image kind: a container without a health check must keep running this long.
GRACE_SECONDS = 2.0


def project_name(project: str, stage: str, name: str) -> str:
    """A Compose project name both Compose v1 and v2 accept: [a-z0-9][a-z0-9_-]*.

    One per workload slot: slugs never contain '_', so joining them with '_' keeps
    ("a-b", "c") and ("a", "b-c") apart, as trimming or squeezing hyphens would not.
    Anything outside a slug's alphabet (never valid input) becomes '-'.
    """
    parts = (re.sub(r"[^a-z0-9-]", "-", part.lower()) for part in (project, stage, name))
    return "_".join(("moorage", *parts))


def compose_project(ctx: DeployContext) -> str:
    """The project name this workload runs under: fixed at its first successful deploy,
    so renaming the workload later does not orphan its containers."""
    artifact = ctx.workload.artifact or {}
    return str(
        artifact.get("project")
        or project_name(ctx.workload.project, ctx.workload.stage, ctx.workload.name)
    )


def workdir(ctx: DeployContext) -> Path:
    return ctx.settings.data_dir / "compose" / ctx.workload.id


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` (UTF-8, readable by the server's user alone: it holds the env)."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(text)
    tmp.replace(path)
    return True


def literal(value: Any) -> Any:
    """``value`` (a string, or every string in a tree of lists and maps) as Compose reads
    it back after interpolation: ``$`` escaped as ``$$``. Every string Moorage writes into
    a file Compose reads goes through it: a ``$`` in an env value, a label or a volume's
    host path (a directory may be named ``${X:-..}``) must never be interpolated."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [literal(v) for v in value]
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    return value


def _model(ctx: DeployContext, compose_text: str) -> dict[str, Any]:
    """The file as Compose resolves it with the workload's env (``up`` says why when it
    cannot be resolved now): ``stack.model_of``."""
    return stack.model_of(compose_text, ctx.workload.env)


def one_shot_services(model: dict[str, Any]) -> set[str]:
    """Services that exit by design: ``restart: "no"`` (``no`` unquoted is YAML's false),
    or a ``service_completed_successfully`` dependency of another service."""
    services = model.get("services")
    if not isinstance(services, dict):
        return set()
    found = set()
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        if service.get("restart") in ("no", False):
            found.add(str(name))
        depends = service.get("depends_on")
        if isinstance(depends, dict):
            for dependency, wanted in depends.items():
                if (
                    isinstance(wanted, dict)
                    and wanted.get("condition") == "service_completed_successfully"
                ):
                    found.add(str(dependency))
    return found & {str(name) for name in services}


def override_text(
    services: list[str],
    one_shot: set[str],
    labels: dict[str, str],
    env: dict[str, str],
    network_labels: dict[str, str],
    binds: dict[str, list[dict[str, Any]]] | None = None,
    volumes: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The override file: Moorage's labels and the workload's env on every service, the
    binds of Moorage's volumes on the services they name (``stack.binds``), and
    ``network_labels`` on the default network and (``volumes``, ``stack.labelled_volumes``)
    on the named volumes the project creates.

    Every string is double-quoted with escapes (a line break, a control character or a
    leading space survives any YAML reader) and unfolded, and every ``$`` is ``$$``.
    """
    environment = dict(sorted(env.items()))
    doc: dict[str, Any] = {
        "services": {
            name: {
                "labels": {
                    **labels,
                    **({ONE_SHOT_LABEL: "true"} if name in one_shot else {}),
                },
                "environment": dict(environment),  # a copy each: no YAML aliases
                **({"volumes": binds[name]} if binds and binds.get(name) else {}),
            }
            for name in services
        }
    }
    if network_labels:
        doc["networks"] = {"default": {"labels": dict(network_labels)}}
    if volumes:
        doc["volumes"] = volumes
    return yaml.safe_dump(
        literal(doc), sort_keys=True, default_style='"', allow_unicode=True, width=2**30
    )


def _override(ctx: DeployContext, compose_text: str) -> str:
    model = _model(ctx, compose_text)
    services = model.get("services")
    return override_text(
        [str(name) for name in services] if isinstance(services, dict) else [],
        one_shot_services(model),
        workload_labels(ctx.workload, ctx.labels),
        ctx.workload.env,
        dict(ctx.labels),
        stack.binds(ctx.workload.volumes, v2=is_v2(ctx)),
        stack.labelled_volumes(model, ctx.labels, v2=is_v2(ctx)),
    )


def is_v2(ctx: DeployContext) -> bool:
    """True when the runner is ``docker compose`` (v2), not ``docker-compose`` (v1)."""
    return ctx.compose.command()[-1] == "compose"


def _env_text(ctx: DeployContext) -> str:
    """``moorage.env`` for files that name it; the override delivers the env itself."""
    return compose_file.env_file_text(ctx.workload.env)[0]


def _args(ctx: DeployContext, *rest: str) -> list[str]:
    name = compose_project(ctx)
    return ["-p", name, "-f", COMPOSE_FILE, "-f", OVERRIDE_FILE, *rest]


def _compose(ctx: DeployContext, *rest: str, log: Any = None) -> tuple[int, str]:
    """Run Compose on the workload's files, ``${NAME}`` resolving to the workload's env
    (the variables the file on disk names: ``compose_file.compose_variables``)."""
    try:
        text = (workdir(ctx) / COMPOSE_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""  # no file: Compose fails on its own, naming it
    return ctx.compose.run(
        _args(ctx, *rest),
        cwd=workdir(ctx),
        log=ctx.log if log is None else log,
        variables=compose_file.compose_variables(ctx.workload.env, text),
        limits=compose_file.RUN_LIMITS,
    )


def _containers(ctx: DeployContext) -> list[Container]:
    name = compose_project(ctx)
    return ctx.engine.containers({PROJECT_LABEL: name})


def _write_files(ctx: DeployContext, compose_text: str) -> None:
    directory = workdir(ctx)
    directory.mkdir(parents=True, exist_ok=True)
    if _write_if_changed(directory / COMPOSE_FILE, compose_text):
        ctx.log(f"wrote {COMPOSE_FILE} (sha256 {_sha(compose_text)[:12]})")
    else:
        ctx.log(f"{COMPOSE_FILE} unchanged (sha256 {_sha(compose_text)[:12]}); not rewritten")
    _write_if_changed(directory / OVERRIDE_FILE, _override(ctx, compose_text))
    _write_if_changed(directory / ENV_FILE, _env_text(ctx))


def _done(c: Container) -> bool:
    """A one-shot service's container that finished its job (exited 0)."""
    return c.labels.get(ONE_SHOT_LABEL) == "true" and c.state == "exited" and c.exit_code == 0


def _fine(c: Container) -> bool:
    return (c.running and c.health in (None, "healthy")) or _done(c)


def _settle(ctx: DeployContext) -> str | None:
    return settle(lambda: _containers(ctx), SETTLE_SECONDS)


def settle(containers_of: Callable[[], list[Container]], timeout: float) -> str | None:
    """Wait up to ``timeout`` s for every container ``containers_of`` lists to run (and be
    healthy if it has a check), or, for a one-shot service, to have exited 0; None when
    fine, else what failed.

    ``up -d`` returns once the containers have started, so one that exits a moment
    later would pass a single look: without a health check, it must last the grace.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        containers = containers_of()
        if not containers:
            return "compose started no containers"
        failed = _failed(containers)
        if failed:
            return failed
        unhealthy = [c for c in containers if c.health == "unhealthy"]
        if unhealthy:
            return f"{unhealthy[0].name} reports unhealthy"
        if all(_fine(c) for c in containers):
            in_grace = time.monotonic() - started < GRACE_SECONDS
            if not (in_grace and any(c.running and c.health is None for c in containers)):
                return None
        if time.monotonic() >= deadline:
            return f"containers did not settle in {timeout:g} s"
        time.sleep(1)


def env_missed(ctx: DeployContext) -> str | None:
    """Why some container's environment is not the workload's env exactly, or None."""
    wanted = ctx.workload.env
    if not wanted:
        return None
    for c in _containers(ctx):
        got = ctx.engine.container_env(c.id)
        for key in sorted(wanted):
            if got.get(key) != wanted[key]:
                service = c.labels.get(SERVICE_LABEL) or c.name
                return f"env {key} did not reach service {service} as stored"
    return None


def _failed(containers: list[Container]) -> str | None:
    """The first container that ended other than by design, described; or None."""
    for c in containers:
        if c.state in ("exited", "dead", "restarting") and not _done(c):
            return f"{c.name} is {c.state} (exit code {c.exit_code})"
    return None


def _up(ctx: DeployContext, *, held: bool = False) -> str | None:
    """``up -d`` the written file and wait until it settles; what failed, or None.

    ``held``: the caller holds the routes (``deploy``). A routed service recreated in
    place has a new container (and host port) and its old one is gone, while the rest of
    the stack may settle for longer than the proxy holds a request to a dead upstream:
    once the routed services settled (never before: a failing version gets no request),
    the held routes follow what runs, and stay held while the rest settles."""
    code, output = _compose(ctx, "up", "-d", "--remove-orphans")
    if code != 0:
        # A dependency that failed (``service_completed_successfully``) says more than
        # Compose's last line ("Encountered errors while bringing up the project.").
        failed = _failed(_containers(ctx))
        return failed or failed_run("up", code, output)
    missed = env_missed(ctx)
    if missed:
        return missed
    # Only routed services that run: a domain whose service left the file has no
    # container to wait for.
    routed = _routed(ctx) & {c.labels.get(SERVICE_LABEL) for c in _containers(ctx)}
    if held and routed:
        failure = settle(
            lambda: [c for c in _containers(ctx) if c.labels.get(SERVICE_LABEL) in routed],
            SETTLE_SECONDS,
        )
        if failure is not None:
            return failure
        ctx.hold_routes(False)  # route to what runs now (it settled) ...
        ctx.hold_routes(True)  # ... and hold there until the deploy ends
    return _settle(ctx)


def _routed(ctx: DeployContext) -> set[str]:
    """The services a domain of the workload routes to."""
    return {str(d["service"]) for d in ctx.workload.domains if d.get("service")}


def _prepare_volumes(ctx: DeployContext) -> None:
    """Make the stage and project directories of Moorage's volumes (as the image kind
    does); an absolute one must exist. Only a deploy makes them: afterwards a missing
    directory fails the bind (``stack.binds``) instead of mounting an empty one."""
    for volume in ctx.workload.volumes:
        if volume.scope == "absolute":
            if not volume.host_path.is_dir():
                raise DeployFailed(
                    f"volume {volume.name}: {volume.host_path} does not exist; create it first"
                )
            continue
        volume.host_path.mkdir(parents=True, exist_ok=True)


def deploy(ctx: DeployContext, compose_text: str) -> dict[str, Any]:
    """Bring ``compose_text`` up and wait until it settles; on failure, bring the previous
    file back up. The services a domain routes to roll out beside their running
    containers (``rollout``: the proxy switches once the new one settled; a failing one
    never gets a request); the rest is brought up in place. The workload's domains are
    held on their upstream throughout (``DeployContext.hold_routes``): a service that
    must be recreated in place has its requests held by the proxy while nothing answers,
    its route follows the new container once it settled (``_up``), and the routes
    follow what runs once the deploy (or its rollback) ends."""
    ctx.hold_routes(True)
    try:
        return _deploy(ctx, compose_text)
    finally:
        ctx.hold_routes(False)


def _deploy(ctx: DeployContext, compose_text: str) -> dict[str, Any]:
    previous_file = workdir(ctx) / COMPOSE_FILE
    previous = previous_file.read_text() if previous_file.exists() else None
    _prepare_volumes(ctx)
    _write_files(ctx, compose_text)
    failure = _roll_routed(ctx, previous, compose_text)
    if failure is None:
        failure = _up(ctx, held=True)
    if failure is None:
        return {
            "compose": compose_text,
            "sha256": _sha(compose_text),
            "project": compose_project(ctx),
            "deployment": ctx.deployment_id,
        }
    ctx.log(f"deploy failed: {failure}")
    if previous is not None and previous != compose_text:
        ctx.log("rolling back to the previous compose file")
        _write_files(ctx, previous)
        again = _up(ctx, held=True)
        if again is not None:
            ctx.log(f"rollback did not settle either: {again}")
    elif previous is None:
        _compose(ctx, "down", "--remove-orphans")
    raise DeployFailed(failure)


def _roll_routed(ctx: DeployContext, previous: str | None, compose_text: str) -> str | None:
    """Roll out the routed services that run now and can run twice (``rollout``); what
    failed, or None. After a failure before any switch, only the file goes back (the old
    containers never stopped); after one, the caller's rollback brings the stack back."""
    routed = sorted(_routed(ctx))
    if previous is None or not routed:
        return None
    running = {c.labels.get(SERVICE_LABEL) for c in _containers(ctx) if c.running}
    services = [s for s in rollout.eligible(_model(ctx, compose_text), routed) if s in running]
    switched = 0
    for service in services:
        try:
            rollout.roll(
                ctx,
                service,
                lambda: _containers(ctx),
                lambda *args: _compose(ctx, *args),
                lambda containers_of: settle(containers_of, SETTLE_SECONDS),
            )
        except DeployFailed as exc:
            if switched == 0:
                ctx.log(f"deploy failed: {exc.message}; the running version keeps serving")
                _write_files(ctx, previous)
                raise
            return exc.message
        switched += 1
    return None


def teardown(ctx: DeployContext) -> None:
    """Remove the project: containers, networks, and the named volumes Compose made for it
    (found by the project label, whatever the file says now). Moorage volumes stay."""
    directory = workdir(ctx)
    if (directory / COMPOSE_FILE).exists():
        if not (directory / OVERRIDE_FILE).exists():
            _write_files(ctx, (directory / COMPOSE_FILE).read_text())
        _compose(ctx, "down", "--remove-orphans")
    for c in _containers(ctx):
        ctx.engine.remove(c.id)
    for volume in named_volumes(ctx):
        ctx.engine.remove_volume(volume)
        ctx.log(f"removed the volume {volume}")
    for name in (COMPOSE_FILE, OVERRIDE_FILE, ENV_FILE):
        (directory / name).unlink(missing_ok=True)
    if directory.exists() and not any(directory.iterdir()):
        directory.rmdir()


def named_volumes(ctx: DeployContext) -> list[str]:
    """The named volumes Compose made for the project, found by its label (whatever the
    file says now), sorted."""
    return sorted(ctx.engine.volumes({PROJECT_LABEL: compose_project(ctx)}))


def status(ctx: DeployContext) -> WorkloadStatus:
    containers = _containers(ctx)
    if containers and all(c.running or _done(c) for c in containers):
        return WorkloadStatus.RUNNING
    if any(c.state in ("restarting", "dead") or (c.exit_code or 0) != 0 for c in containers):
        return WorkloadStatus.FAILED
    return WorkloadStatus.STOPPED


def _recorded(ctx: DeployContext) -> dict[str, Any] | None:
    """The artifact of the last good deployment, if it holds a file (never-deployed: None)."""
    artifact = ctx.workload.artifact
    return artifact if artifact and "compose" in artifact else None


def reconcile(ctx: DeployContext) -> bool:
    artifact = _recorded(ctx)
    if artifact is None:
        return False
    containers = _containers(ctx)
    if containers and all(c.running or _done(c) for c in containers):
        return False  # a finished one-shot stays finished: bringing it up would rerun it
    _write_files(ctx, str(artifact["compose"]))
    ctx.log("reconcile: bringing the compose project back up")
    _compose(ctx, "up", "-d", "--remove-orphans")
    return True


def redeploy(ctx: DeployContext) -> dict[str, Any]:
    """Bring the recorded Compose file up again and wait until it settles, as a deploy does."""
    artifact = _recorded(ctx)
    if artifact is None:
        raise DeployFailed("this workload has no deployment to run again")
    _write_files(ctx, str(artifact["compose"]))
    failure = _up(ctx)
    if failure is not None:
        raise DeployFailed(failure)
    return dict(artifact)


LOG_SLOTS = threading.BoundedSemaphore(compose_file.CONFIG_SLOTS)
"""``logs`` runs Compose, which reads the whole file again, on a read anyone with the
operator role may repeat: as many at once as ``config`` runs, at most."""


def logs(ctx: DeployContext, tail: int) -> str:
    """The stack's last ``tail`` lines; 503 ``busy`` when other reads held every slot for
    ``CONFIG_TIMEOUT`` s."""
    if not (workdir(ctx) / COMPOSE_FILE).exists():
        return ""
    if not LOG_SLOTS.acquire(timeout=compose_file.CONFIG_TIMEOUT):
        raise Busy("other log reads are running; try again in a moment", retry_after=5)
    try:
        _, output = _compose(ctx, "logs", "--no-color", "--tail", str(tail), log=lambda _line: None)
    finally:
        LOG_SLOTS.release()
    return output
