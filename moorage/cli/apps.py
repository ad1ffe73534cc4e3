"""``moorage apps``: workloads."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from moorage.cli import domains, env, rollback, snapshot_hooks, volumes
from moorage.cli.client import Client, CliError, ServerError
from moorage.cli.config_input import dotted_patch, read_config, replace_patch
from moorage.cli.output import console, emit_json, table
from moorage.cli.refs import resolve
from moorage.cli.show import show_workload
from moorage.store.states import DEPLOYMENT_PENDING, DeploymentStatus

app = typer.Typer(
    help="Workloads (apps): list, show, create, update, deploy, stop, start, restart, logs, "
    "delete; env, volumes and domains."
)
app.add_typer(env.app, name="env")
app.add_typer(volumes.app, name="volumes")
app.add_typer(domains.app, name="domains")
app.add_typer(snapshot_hooks.app, name="hooks")
app.command("rollback")(rollback.rollback)

REF_HELP = "Workload id, name or project/stage/name"
Ref = Annotated[str, typer.Argument(help=REF_HELP)]


def parse_port(spec: str) -> dict[str, Any]:
    """``--port``: ``8080`` (the container's port, published on a port Moorage picks),
    ``18080:8080`` (host:container, as ``docker run -p``) or either with ``/udp``; the
    image kind's ``ports`` item. Raises ``CliError`` for anything else."""
    ports, _, protocol = spec.partition("/")
    host, colon, container = ports.rpartition(":")
    numbers = [host, container] if colon else [container]
    if protocol not in ("", "tcp", "udp") or not all(
        p.isdigit() and 1 <= int(p) <= 65535 for p in numbers
    ):
        raise CliError(f"--port takes PORT or HOST:PORT (1-65535), optionally /udp, not {spec!r}")
    mapping: dict[str, Any] = {"container": int(container)}
    if host:
        mapping["host"] = int(host)
    if protocol:
        mapping["protocol"] = protocol
    return mapping


def _config(
    config: str | None, config_file: Path | None, image: str | None, ports: list[str]
) -> dict[str, Any]:
    if sum(x is not None for x in (config, config_file, image)) != 1:
        raise CliError("give exactly one of --config JSON, --config-file PATH or --image REF")
    if ports and image is None:
        raise CliError('--port goes with --image; with --config, put "ports" in the config')
    if image is not None:
        return {"image": image, **({"ports": [parse_port(p) for p in ports]} if ports else {})}
    if config_file is not None:
        return read_config(config_file)
    try:
        value = json.loads(config)  # type: ignore[arg-type]
    except json.JSONDecodeError as exc:
        raise CliError(f"config is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(value, dict):
        raise CliError("config must be a JSON object")
    return value


@app.command("list")
def list_apps(
    project: Annotated[str | None, typer.Option(help="Only this project")] = None,
    stage: Annotated[str | None, typer.Option(help="Only this stage")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List workloads."""
    items = Client().get("/api/workloads", project=project, stage=stage, kind=kind)["items"]
    if as_json:
        emit_json(items)
        return
    table(
        items,
        ["id", "project", "stage", "name", "kind", "status"],
        empty="No workloads yet: moorage apps create NAME --project P --stage S --image REF",
    )


@app.command("show")
def show_app(ref: Ref, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one workload: config, last deployment, env (secrets masked) and volumes."""
    client = Client()
    show_workload(client, resolve(client, ref), as_json=as_json)


@app.command("create")
def create_app(
    name: str,
    project: Annotated[str, typer.Option(help="Project slug")],
    stage: Annotated[str, typer.Option(help="Stage slug")],
    kind: Annotated[str, typer.Option(help="Source kind: image, compose, ...")] = "image",
    image: Annotated[str | None, typer.Option(help="Shortcut: image config with this ref")] = None,
    port: Annotated[
        list[str] | None,
        typer.Option(
            "--port",
            help="With --image: the port the app listens on (8080), or HOST:PORT; repeatable",
        ),
    ] = None,
    config: Annotated[str | None, typer.Option(help="Config as JSON")] = None,
    config_file: Annotated[Path | None, typer.Option(help="Config from a JSON file")] = None,
    ref_id: Annotated[str | None, typer.Option(help="Defaults to the new id")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a workload."""
    body = {
        "name": name,
        "kind": kind,
        "project": project,
        "stage": stage,
        "config": _config(config, config_file, image, port or []),
        "ref_id": ref_id,
    }
    workload = Client().post("/api/workloads", body)
    if as_json:
        emit_json(workload)
        return
    print(f"created {workload['kind']} workload {workload['name']} with id {workload['id']}")


@app.command("update")
def update_app(
    ref: Ref,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE into the config; dotted keys (health.http=/), list items "
            "(command[1]=-v; the next index appends, =null removes)",
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="The whole new config, JSON or YAML")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Rename the workload")] = None,
    keep_last: Annotated[
        int | None, typer.Option(help="Snapshot retention: keep this many captured")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Change a workload's config; it takes effect at the next deploy. A value is read as
    the type the kind takes at that key (image=12345 is text, stop_timeout=30 a number;
    JSON for lists and objects; null removes a key)."""
    if assignments and file is not None:
        raise CliError("give --set KEY=VALUE or --file PATH, not both")
    client = Client()
    workload = resolve(client, ref)
    body: dict[str, Any] = {}
    if file is not None:
        body["config"] = replace_patch(workload["config"], read_config(file))
    elif assignments:
        kinds = client.get("/api/kinds")["items"]
        schema = next(
            (
                k["schema"]
                for k in kinds
                if k["category"] == "source" and k["kind"] == workload["kind"]
            ),
            None,
        )
        body["config"] = dotted_patch(assignments, current=workload["config"], schema=schema)
    if name is not None:
        body["name"] = name
    if keep_last is not None:
        body["keep_last"] = keep_last
    if not body:
        raise CliError("nothing to change: give --set KEY=VALUE, --file, --name or --keep-last")
    updated = client.patch(f"/api/workloads/{workload['id']}", body)
    if as_json:
        emit_json(updated)
        return
    print(f"updated {updated['kind']} workload {updated['name']}")
    if updated.get("pending_changes"):
        print(f"saved; deploy to apply: moorage apps deploy {updated['id']}")


@app.command("delete")
def delete_app(
    ref: Ref,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
    purge_snapshots: Annotated[
        bool, typer.Option("--purge-snapshots", help="Also delete its snapshot archives")
    ] = False,
    purge_volumes: Annotated[
        bool,
        typer.Option(
            "--purge-volumes", help="Also delete its Compose named volumes and their data"
        ),
    ] = False,
) -> None:
    """Delete a workload. Its Moorage volumes stay on disk; snapshots and Compose named
    volumes are deleted only when the flags say so (otherwise the delete is refused)."""
    client = Client()
    workload = resolve(client, ref)
    if not yes:
        typer.confirm(f"Delete workload {workload['name']} ({workload['id']})?", abort=True)
    flags = {"purge_snapshots": purge_snapshots, "purge_volumes": purge_volumes}
    query = "&".join(f"{name}=true" for name, on in flags.items() if on)
    try:
        client.delete(f"/api/workloads/{workload['id']}" + (f"?{query}" if query else ""))
    except ServerError as exc:  # the server names its query parameter; say the flag
        if exc.code == "has_snapshots":
            raise CliError(
                f"{workload['name']} has snapshots: delete them first (moorage snapshots "
                f"delete) or pass --purge-snapshots to delete them with it "
                f"({exc.status} {exc.code})"
            ) from None
        if exc.code == "has_volumes":
            raise CliError(
                f"{exc.server_message.split('; ')[0]}: copy what you need out of them, then pass "
                f"--purge-volumes to delete them with it ({exc.status} {exc.code})"
            ) from None
        raise
    print(f"deleted workload {workload['name']}")


def follow(
    client: Client, workload: dict[str, Any], deployment: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Print a deployment's log as it grows, polling every 0.5 s, until it ends; answer it."""
    path = f"/api/workloads/{workload['id']}/deployments/{deployment['id']}"
    shown = 0
    deadline = time.monotonic() + timeout
    with console.status(f"deploying {workload['name']}...") as spinner:
        while True:
            deployment = client.get(path)
            log = deployment["log"]
            for line in log[shown:].splitlines():
                console.print(line, markup=False, highlight=False)
            shown = len(log)
            spinner.update(f"deploying {workload['name']}: {deployment['status']}")
            if deployment["status"] not in DEPLOYMENT_PENDING:
                return deployment
            if time.monotonic() > deadline:
                raise CliError(f"deployment {deployment['id']} still {deployment['status']}")
            time.sleep(0.5)


@app.command("deploy")
def deploy_app(
    ref: Ref,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow until it ends")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to follow before giving up")] = 600,
    pull: Annotated[bool, typer.Option("--pull", help="Pull the image even if present")] = False,
) -> None:
    """Queue a deploy and follow its log; exits 1 when the deploy fails."""
    client = Client()
    workload = resolve(client, ref)
    path_ = f"/api/workloads/{workload['id']}/deploy" + ("?pull=true" if pull else "")
    deployment = client.post(path_)
    print(f"queued deployment {deployment['id']} of {workload['name']}")
    if not wait:
        return
    deployment = follow(client, workload, deployment, timeout)
    if deployment["status"] != DeploymentStatus.SUCCEEDED:
        raise CliError(f"deploy {deployment['status']}: {deployment.get('error') or 'see log'}")
    print(f"deployed {workload['name']}")


def _lifecycle(ref: str, action: str, done: str) -> None:
    client = Client()
    workload = resolve(client, ref)
    after = client.post(f"/api/workloads/{workload['id']}/{action}")
    print(f"{done} {workload['name']} (status: {after['status']})")


@app.command("stop")
def stop_app(ref: Ref) -> None:
    """Stop a workload and keep it stopped: reconcile and triggered deploys leave it so."""
    _lifecycle(ref, "stop", "stopped")


@app.command("start")
def start_app(ref: Ref) -> None:
    """Start a stopped workload: its last successful deployment runs again."""
    _lifecycle(ref, "start", "started")


@app.command("restart")
def restart_app(ref: Ref) -> None:
    """Stop a workload's containers and start its last successful deployment again."""
    _lifecycle(ref, "restart", "restarted")


@app.command("logs")
def app_logs(
    ref: Ref,
    tail: Annotated[int, typer.Option(help="How many lines")] = 200,
    follow_: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Follow the newest deployment's log until it ends"),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to follow before giving up")] = 600,
) -> None:
    """Print the workload's container output, or with --follow the newest deployment's log
    until it ends (exit 1 unless it succeeded)."""
    client = Client()
    workload = resolve(client, ref)
    if follow_:
        items = client.get(f"/api/workloads/{workload['id']}/deployments", limit=1)["items"]
        if not items:
            raise CliError(f"{workload['name']} has no deployment yet: moorage apps deploy {ref}")
        done = follow(client, workload, items[0], timeout)
        if done["status"] != DeploymentStatus.SUCCEEDED:
            raise CliError(f"deployment {done['id']} {done['status']}: {done.get('error')}")
        print(f"deployment {done['id']} {done['status']}")
        return
    out = client.get(f"/api/workloads/{workload['id']}/logs", tail=tail)
    print(out["logs"], end="" if out["logs"].endswith("\n") else "\n")
