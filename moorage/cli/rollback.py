"""``moorage apps rollback``: run an earlier deployment's artifact again, its data too
with ``--data`` (SPEC section 10)."""

from __future__ import annotations

from typing import Annotated

import typer

from moorage.cli.client import Client, CliError
from moorage.cli.refs import resolve


def rollback(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
    deployment: Annotated[str, typer.Argument(help="The deployment id to go back to")],
    data: Annotated[
        bool,
        typer.Option(
            "--data",
            help="Restore the checkpoint the next deploy took first (admin): code and data "
            "go back together",
        ),
    ] = False,
    confirm: Annotated[
        str | None,
        typer.Option("--confirm", help="With --data: the workload's name (it replaces live data)"),
    ] = None,
) -> None:
    """Roll the workload back to DEPLOYMENT (operator; --data: admin)."""
    client = Client()
    target = resolve(client, workload)
    headers = {}
    if data:
        if confirm is None:
            confirm = typer.prompt(f"Type {target['name']!r} to replace its live data")
        if confirm != target["name"]:
            raise CliError(f"--confirm must be the workload's name, {target['name']!r}")
        headers["X-Confirm-Restore"] = confirm
    answer = client.raw_post(
        f"/api/workloads/{target['id']}/deployments/{deployment}/rollback",
        {"data": data},
        headers=headers,
    )
    if answer.get("restore_id"):
        print(
            f"restoring checkpoint {answer['checkpoint_snapshot_id']} ({answer['restore_id']}), "
            f"then deploying what {deployment} ran"
        )
    else:
        print(f"rolling back to {deployment}: deployment {answer['deployment']['id']} queued")
