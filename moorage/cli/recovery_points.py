"""``moorage recovery-points``: capture a project stage at one instant, list, restore."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from moorage.cli.client import Client, CliError
from moorage.cli.output import emit_json, table
from moorage.store.states import RestoreStatus, SnapshotStatus

app = typer.Typer(help="Recovery points: every workload of a project stage at one instant.")
StageRef = Annotated[str, typer.Argument(help="PROJECT/STAGE")]


def _split(ref: str) -> tuple[str, str]:
    project, sep, stage = ref.partition("/")
    if not sep or not project or not stage or "/" in stage:
        raise CliError(f"{ref!r} is not PROJECT/STAGE")
    return project, stage


@app.command("create")
def create(
    ref: StageRef,
    mode: Annotated[str, typer.Option(help="stop, pause or none")] = "stop",
    wait: Annotated[bool, typer.Option("--wait/--no-wait")] = True,
) -> None:
    """Capture every workload of the stage at one instant (all quiesced, captured, resumed)."""
    client = Client()
    project, stage = _split(ref)
    base = f"/api/projects/{project}/recovery-points"
    point = client.post(base, {"stage": stage, "mode": mode})
    print(f"capturing {ref} ({point['id']}, {len(point['items'])} workloads)")
    for skipped in point.get("skipped", []):
        print(f"skipped {skipped['name']}: {skipped['reason']}")
    if not wait:
        return
    while point["status"] == SnapshotStatus.CAPTURING:
        time.sleep(0.5)
        point = client.get(f"{base}/{point['id']}")
    if point["status"] != SnapshotStatus.READY:
        raise CliError(f"recovery point failed: {point['error']}")
    print(f"ready: {', '.join(i['name'] for i in point['items'])}")


@app.command("list")
def list_points(ref: StageRef, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The stage's recovery points, newest first."""
    client = Client()
    project, stage = _split(ref)
    items = client.get(f"/api/projects/{project}/recovery-points", stage=stage)["items"]
    if as_json:
        emit_json(items)
        return
    rows: list[dict[str, Any]] = [
        {
            **p,
            "workloads": ", ".join(i["name"] for i in p["items"]),
            "skipped": ", ".join(k["name"] for k in p.get("skipped", [])),
        }
        for p in items
    ]
    table(
        rows,
        ["id", "created_at", "mode", "status", "workloads", "skipped", "restore_status"],
        empty=f"No recovery points yet: moorage recovery-points create {ref}",
    )


@app.command("restore")
def restore(
    ref: StageRef,
    point_id: Annotated[str, typer.Argument(help="The recovery point's id")],
    confirm: Annotated[
        str, typer.Option("--confirm", help="PROJECT/STAGE again: this replaces live data")
    ],
    wait: Annotated[bool, typer.Option("--wait/--no-wait")] = True,
) -> None:
    """Restore every workload of the point (admin); every pre-flight passes first."""
    client = Client()
    project, _stage = _split(ref)
    if confirm != ref:
        raise CliError(f"--confirm {confirm!r} is not {ref!r}: pass --confirm {ref}")
    base = f"/api/projects/{project}/recovery-points/{point_id}"
    point = client.raw_post(f"{base}/restore", None, headers={"X-Confirm-Restore": confirm})
    print(f"restoring {ref} to {point_id}")
    if not wait:
        return
    while point["restore_status"] == RestoreStatus.RUNNING:
        time.sleep(0.5)
        point = client.get(base)
    if point["restore_status"] != RestoreStatus.SUCCEEDED:
        raise CliError(f"restore {point['restore_status']}: {point['restore_error']}")
    print(f"restored {', '.join(r['name'] for r in point['restores'])}")
