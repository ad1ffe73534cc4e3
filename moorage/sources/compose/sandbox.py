"""The ``compose`` kind in a restore drill's sandbox (SPEC section 10): the deployed
Compose file run once more as a project of its own, apart from the live stack.

The sandbox's file is the deployed file as Compose resolves it (``stack.model_of``:
``extends``, ``include`` and interpolation done), rewritten so that nothing of it can
reach the live stack or the host's ports:

- every service loses ``ports`` (no published port), ``container_name`` (a fixed name
  would clash with the live container) and ``networks``; the project's only network is
  the sandbox's own (external, made and removed by the drill); ``restart`` is ``no``;
- every service and named volume carries the sandbox's labels (the drill removes its
  containers, network and volumes by them, even after a crash); a named volume is
  written as labels only (no ``name``, ``driver`` or ``driver_opts``: a fixed name would
  be the live volume, driver options a host bind);
- Moorage's volumes are bound from the restored copies (``stack.binds`` of
  ``Sandbox.volumes``); a named volume of the file is a new, empty one of the sandbox's
  project (named volumes are Docker's, not covered by snapshots);
- a file that would share live state is refused before anything starts
  (``DeployFailed``): a bind of a host path, an external named volume, ``network_mode``,
  ``pid`` or ``ipc`` of ``host`` / ``container:...``, or ``volumes_from`` a container.

Every string is written with ``$`` as ``$$`` (the model is already interpolated). The
check runs in the container of the service it names; without one, in the first service
(file order) that published a port, else the first service (answered as ``""``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from moorage.errors import DeployFailed
from moorage.plugins.spec import DeployContext, Sandbox, drill_prefix
from moorage.runtime.compose import failed_run
from moorage.sources.compose import deploy as compose_deploy
from moorage.sources.compose import stack

SANDBOX_FILE = "sandbox.yml"


def project(sandbox: Sandbox) -> str:
    """The sandbox's Compose project name (``[a-z0-9][a-z0-9_-]*``)."""
    return drill_prefix(sandbox.id)


def _as_dict(value: Any) -> dict[str, Any]:
    """``labels``/``environment`` in either Compose syntax (list of ``K=V``, or a map)."""
    if isinstance(value, dict):
        return {str(k): "" if v is None else v for k, v in value.items()}
    if isinstance(value, list):
        pairs = (str(item).partition("=") for item in value)
        return {k: v for k, _, v in pairs}
    return {}


def _shared(service: str, mount: Any, external: set[str]) -> str | None:
    """Why ``mount`` (a service's ``volumes`` entry) would share live state, or None."""
    if isinstance(mount, dict):
        kind, source = mount.get("type", "volume"), str(mount.get("source") or "")
    else:
        source, sep, _rest = str(mount).partition(":")
        if not sep:
            return None  # an anonymous volume: new in the sandbox
        kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
    if kind == "bind":
        return f"service {service} binds the host path {source}"
    if kind == "volume" and source in external:
        return f"service {service} mounts the external volume {source}"
    return None


def sandbox_model(
    model: dict[str, Any],
    sandbox: Sandbox,
    env: dict[str, str],
    *,
    v2: bool,
) -> dict[str, Any]:
    """The sandbox's Compose model from the deployed file's resolved ``model`` (see the
    module docstring). Raises DeployFailed when the file would share live state."""
    services = model.get("services")
    if not isinstance(services, dict) or not services:
        raise DeployFailed("the deployed Compose file has no services")
    volumes = model.get("volumes") if isinstance(model.get("volumes"), dict) else {}
    assert isinstance(volumes, dict)
    external = {str(k) for k, v in volumes.items() if isinstance(v, dict) and v.get("external")}
    binds = stack.binds(sandbox.volumes, v2=v2)
    one_shot = compose_deploy.one_shot_services(model)
    out_services: dict[str, Any] = {}
    for name, raw in services.items():
        service = copy.deepcopy(raw) if isinstance(raw, dict) else {}
        for key in ("network_mode", "pid", "ipc"):
            mode = str(service.get(key) or "")
            if mode == "host" or mode.startswith("container:"):
                raise DeployFailed(
                    f"service {name} uses {key} {mode}: a drill cannot keep it apart from "
                    "the host and the live stack"
                )
        for source in service.get("volumes_from") or []:
            if str(source).startswith("container:"):
                raise DeployFailed(
                    f"service {name} takes volumes_from {source}: a drill would share them "
                    "with the live stack"
                )
        for mount in service.get("volumes") or []:
            why = _shared(str(name), mount, external)
            if why is not None:
                raise DeployFailed(f"{why}: a drill would share it with the live stack")
        for key in ("ports", "container_name", "networks"):
            service.pop(key, None)
        service["restart"] = "no"
        service["labels"] = {
            **_as_dict(service.get("labels")),
            **sandbox.labels,
            **({compose_deploy.ONE_SHOT_LABEL: "true"} if name in one_shot else {}),
        }
        service["environment"] = {**_as_dict(service.get("environment")), **env}
        service["volumes"] = [*(service.get("volumes") or []), *binds.get(str(name), [])]
        if not service["volumes"]:
            del service["volumes"]
        out_services[str(name)] = service
    # No ``version``: an old file format would refuse the network's ``name`` (Compose 1.x).
    out: dict[str, Any] = {k: v for k, v in model.items() if k in ("secrets", "configs")}
    out["services"] = out_services
    out["networks"] = {"default": {"name": sandbox.network, "external": True}}
    if volumes:
        out["volumes"] = {str(k): {"labels": dict(sandbox.labels)} for k in volumes}
    return compose_deploy.literal(out)  # type: ignore[no-any-return]


def _main_service(model: dict[str, Any]) -> str:
    services = model.get("services") or {}
    names = [str(n) for n in services]
    published = [str(n) for n, s in services.items() if isinstance(s, dict) and s.get("ports")]
    return (published or names)[0]


def _folder(ctx: DeployContext, sandbox: Sandbox) -> Path:
    return ctx.settings.data_dir / "drills" / sandbox.id / "stack"


def start(ctx: DeployContext, sandbox: Sandbox) -> dict[str, str]:
    """Bring the sandbox's project up from the deployed Compose file; answer each
    service's container id, and ``""`` for the service a check runs in by default."""
    artifact = ctx.workload.artifact or {}
    text = artifact.get("compose")
    if not isinstance(text, str):
        raise DeployFailed("the workload has no deployed Compose file to drill")
    model = stack.model_of(text, ctx.workload.env)
    wanted = sandbox_model(model, sandbox, ctx.workload.env, v2=compose_deploy.is_v2(ctx))
    folder = _folder(ctx, sandbox)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SANDBOX_FILE).write_text(
        yaml.safe_dump(wanted, sort_keys=True, default_style='"', allow_unicode=True, width=2**30)
    )
    ctx.engine.ensure_network(sandbox.network, sandbox.labels)
    name = project(sandbox)
    code, output = ctx.compose.run(
        ["-p", name, "-f", SANDBOX_FILE, "up", "-d"], cwd=folder, log=ctx.log, variables={}
    )
    if code != 0:
        raise DeployFailed(failed_run("up", code, output))
    containers = {
        c.labels.get(compose_deploy.SERVICE_LABEL, c.name): c.id
        for c in ctx.engine.containers({compose_deploy.PROJECT_LABEL: name})
    }
    ctx.log(f"started {len(containers)} services as {name} on {sandbox.network}, no published port")
    main = _main_service(model)
    if main in containers:
        containers[""] = containers[main]
    return containers


def healthy(ctx: DeployContext, sandbox: Sandbox, timeout: float) -> str:
    """Wait until every service of the sandbox runs (healthy where it has a check) or, for
    a one-shot service, exited 0, as a deploy settles; DeployFailed with what failed."""
    name = project(sandbox)
    failure = compose_deploy.settle(
        lambda: ctx.engine.containers({compose_deploy.PROJECT_LABEL: name}), timeout
    )
    if failure is not None:
        raise DeployFailed(failure)
    return "every service runs, healthy where it has a check"
