"""``moorage apps``: workloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from moorage.cli.client import Client, CliError
from moorage.cli.output import console, emit_json, table
from moorage.store.states import DEPLOYMENT_PENDING, DeploymentStatus

app = typer.Typer(
    help="Workloads (apps): list, show, create, deploy, stop, start, restart, logs, delete."
)


def resolve(client: Client, ref: str) -> dict[str, Any]:
    """Find a workload by id, or by 'project/stage/name'."""
    if ref.count("/") == 2:
        project, stage, name = ref.split("/")
        items = client.get("/api/workloads", project=project, stage=stage)["items"]
        for item in items:
            if item["name"] == name:
                return dict(item)
        raise CliError(f"no workload {ref!r}")
    return dict(client.get(f"/api/workloads/{ref}"))


def _config(config: str | None, config_file: Path | None, image: str | None) -> dict[str, Any]:
    if sum(x is not None for x in (config, config_file, image)) != 1:
        raise CliError("give exactly one of --config JSON, --config-file PATH or --image REF")
    if image is not None:
        return {"image": image}
    try:
        text = config if config is not None else config_file.read_text()  # type: ignore[union-attr]
        value = json.loads(text)
    except OSError as exc:
        raise CliError(f"cannot read {config_file}: {exc.strerror}") from None
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
def show_app(ref: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one workload (by id or project/stage/name)."""
    client = Client()
    workload = resolve(client, ref)
    if as_json:
        emit_json(workload)
        return
    for key in ("id", "name", "kind", "project", "stage", "ref_id", "status", "desired_state"):
        console.print(f"[bold]{key}[/bold]: {workload[key]}")
    if workload.get("pending_changes"):
        console.print("[bold]pending_changes[/bold]: saved changes not deployed yet")
    console.print("[bold]config[/bold]:")
    console.print_json(data=workload["config"])


@app.command("create")
def create_app(
    name: str,
    project: Annotated[str, typer.Option(help="Project slug")],
    stage: Annotated[str, typer.Option(help="Stage slug")],
    kind: Annotated[str, typer.Option(help="Source kind: image, compose, ...")] = "image",
    image: Annotated[str | None, typer.Option(help="Shortcut: image config with this ref")] = None,
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
        "config": _config(config, config_file, image),
        "ref_id": ref_id,
    }
    workload = Client().post("/api/workloads", body)
    if as_json:
        emit_json(workload)
        return
    print(f"created {workload['kind']} workload {workload['name']} with id {workload['id']}")


@app.command("delete")
def delete_app(
    ref: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
    purge_snapshots: Annotated[
        bool, typer.Option("--purge-snapshots", help="Also delete its snapshot archives")
    ] = False,
) -> None:
    """Delete a workload (by id or project/stage/name). Its volume data stays on disk."""
    client = Client()
    workload = resolve(client, ref)
    if not yes:
        typer.confirm(f"Delete workload {workload['name']} ({workload['id']})?", abort=True)
    suffix = "?purge_snapshots=true" if purge_snapshots else ""
    client.delete(f"/api/workloads/{workload['id']}{suffix}")
    print(f"deleted workload {workload['name']}")


@app.command("deploy")
def deploy_app(
    ref: str,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow until it ends")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to follow before giving up")] = 600,
    pull: Annotated[bool, typer.Option("--pull", help="Pull the image even if present")] = False,
) -> None:
    """Queue a deploy and follow its log; exits 1 when the deploy fails."""
    import time

    client = Client()
    workload = resolve(client, ref)
    path_ = f"/api/workloads/{workload['id']}/deploy" + ("?pull=true" if pull else "")
    deployment = client.post(path_)
    print(f"queued deployment {deployment['id']} of {workload['name']}")
    if not wait:
        return
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
                break
            if time.monotonic() > deadline:
                raise CliError(f"deployment {deployment['id']} still {deployment['status']}")
            time.sleep(0.5)
    if deployment["status"] != DeploymentStatus.SUCCEEDED:
        raise CliError(f"deploy {deployment['status']}: {deployment.get('error') or 'see log'}")
    print(f"deployed {workload['name']}")


def _lifecycle(ref: str, action: str, done: str) -> None:
    client = Client()
    workload = resolve(client, ref)
    after = client.post(f"/api/workloads/{workload['id']}/{action}")
    print(f"{done} {workload['name']} (status: {after['status']})")


@app.command("stop")
def stop_app(ref: str) -> None:
    """Stop a workload and keep it stopped: reconcile and triggered deploys leave it so."""
    _lifecycle(ref, "stop", "stopped")


@app.command("start")
def start_app(ref: str) -> None:
    """Start a stopped workload: its last successful deployment runs again."""
    _lifecycle(ref, "start", "started")


@app.command("restart")
def restart_app(ref: str) -> None:
    """Stop a workload's containers and start its last successful deployment again."""
    _lifecycle(ref, "restart", "restarted")


@app.command("logs")
def app_logs(ref: str, tail: Annotated[int, typer.Option(help="How many lines")] = 200) -> None:
    """Print the workload's container output."""
    client = Client()
    workload = resolve(client, ref)
    out = client.get(f"/api/workloads/{workload['id']}/logs", tail=tail)
    print(out["logs"], end="" if out["logs"].endswith("\n") else "\n")
