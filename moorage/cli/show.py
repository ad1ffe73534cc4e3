"""``moorage apps show``: one workload with its last deployment, env and volumes.

Env and volumes are operator-only in the API; a viewer sees the rest and is told so.
"""

from __future__ import annotations

from typing import Any

from moorage.cli.client import Client, ServerError
from moorage.cli.env import masked
from moorage.cli.output import cell, console, emit_json, table

FIELDS = ("id", "name", "kind", "project", "stage", "ref_id", "status", "desired_state")


def _readable(client: Client, path: str) -> Any:
    """GET ``path``, or None when the caller's role may not read it (403)."""
    try:
        return client.get(path)
    except ServerError as exc:
        if exc.status == 403:
            return None
        raise


def _deployment_line(deployment: dict[str, Any] | None) -> str:
    if deployment is None:
        return "none yet"
    line = (
        f"{deployment['id']} {deployment['status']} ({deployment['reason']}), "
        f"queued {cell(deployment['created_at'])}"
    )
    if deployment.get("finished_at"):
        line += f", ended {cell(deployment['finished_at'])}"
    if deployment.get("error"):
        line += f": {deployment['error']}"
    return line


def show_workload(client: Client, workload: dict[str, Any], *, as_json: bool) -> None:
    """Print ``workload`` with its newest deployment, env (secrets masked) and volumes."""
    base = f"/api/workloads/{workload['id']}"
    deployments = client.get(f"{base}/deployments", limit=1)["items"]
    last = deployments[0] if deployments else None
    env = _readable(client, f"{base}/env")
    volumes = _readable(client, f"{base}/volumes")
    if as_json:
        extra = {"env": env, "volumes": volumes["items"] if volumes is not None else None}
        emit_json({**workload, "last_deployment": last, **extra})
        return
    for key in FIELDS:
        console.print(f"[bold]{key}[/bold]: {workload[key]}", highlight=False)
    if workload.get("pending_changes"):
        console.print("[bold]pending_changes[/bold]: saved changes not deployed yet")
    console.print(f"[bold]last deployment[/bold]: {_deployment_line(last)}", highlight=False)
    console.print("[bold]config[/bold]:")
    console.print_json(data=workload["config"])
    console.print("[bold]env[/bold]:")
    if env is None:
        console.print("  (operators only)")
    else:
        table(masked(env), ["key", "value", "secret"], empty="  none")
    console.print("[bold]volumes[/bold]:")
    if volumes is None:
        console.print("  (operators only)")
    else:
        table(volumes["items"], ["name", "scope", "source", "target", "read_only"], empty="  none")
