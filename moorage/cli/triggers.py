"""``moorage triggers``: standalone triggers and their bindings."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from moorage.cli.client import Client, CliError
from moorage.cli.output import emit_json, table
from moorage.cli.refs import resolve, resolve_trigger

app = typer.Typer(help="Triggers: list, create, bind, unbind, delete, deliveries, token.")
TriggerRef = Annotated[str, typer.Argument(help="Trigger id, name or kind/name")]
WorkloadRef = Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")]


@app.command("list")
def list_triggers(
    kind: Annotated[str | None, typer.Option(help="Only this kind")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List triggers."""
    items = Client().get("/api/triggers", kind=kind)["items"]
    if as_json:
        emit_json(items)
        return
    rows = [{**t, "bound": len(t["workloads"])} for t in items]
    table(
        rows,
        ["id", "kind", "name", "bound", "url"],
        empty="No triggers yet: moorage triggers create webhook NAME",
    )


@app.command("create")
def create_trigger(
    kind: str,
    name: str,
    config: Annotated[str, typer.Option(help="Config as JSON")] = "{}",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create a trigger; a webhook prints its URL."""
    try:
        parsed: Any = json.loads(config)
    except json.JSONDecodeError as exc:
        raise CliError(f"config is not valid JSON: {exc.msg}") from None
    trigger = Client().post("/api/triggers", {"kind": kind, "name": name, "config": parsed})
    if as_json:
        emit_json(trigger)
        return
    print(f"created {trigger['kind']} trigger {trigger['name']} with id {trigger['id']}")
    if trigger.get("url"):
        print(f"url: {trigger['url']}")


@app.command("bind")
def bind_trigger(trigger_ref: TriggerRef, workload: WorkloadRef) -> None:
    """Bind a trigger to a workload."""
    client = Client()
    target = resolve(client, workload)
    trigger_id = resolve_trigger(client, trigger_ref)["id"]
    trigger = client.post(f"/api/workloads/{target['id']}/triggers", {"trigger_id": trigger_id})
    print(f"bound {trigger['kind']} trigger {trigger['name']} to {target['name']}")


@app.command("unbind")
def unbind_trigger(trigger_ref: TriggerRef, workload: WorkloadRef) -> None:
    """Remove a trigger's binding to a workload."""
    client = Client()
    target = resolve(client, workload)
    trigger = resolve_trigger(client, trigger_ref)
    client.delete(f"/api/workloads/{target['id']}/triggers/{trigger['id']}")
    print(f"unbound trigger {trigger['name']} from {target['name']}")


@app.command("delete")
def delete_trigger(trigger_ref: TriggerRef) -> None:
    """Delete a trigger and all its bindings."""
    client = Client()
    trigger = resolve_trigger(client, trigger_ref)
    client.delete(f"/api/triggers/{trigger['id']}")
    print(f"deleted trigger {trigger['name']} ({trigger['id']})")


@app.command("deliveries")
def deliveries(
    trigger_ref: TriggerRef,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The last 100 calls of a webhook: what arrived, its signature, what it queued."""
    client = Client()
    trigger_id = resolve_trigger(client, trigger_ref)["id"]
    items = client.get(f"/api/triggers/{trigger_id}/deliveries")["items"]
    if as_json:
        emit_json(items)
        return
    rows = [{**d, "queued": len(d["deployments"])} for d in items]
    table(
        rows,
        ["at", "source", "event", "signature", "outcome", "status_code", "queued", "reason"],
        empty="No deliveries yet: call the trigger's URL",
    )


@app.command("token")
def regenerate_token(trigger_ref: TriggerRef) -> None:
    """Give a webhook a new URL; the old one stops working at once."""
    client = Client()
    trigger_id = resolve_trigger(client, trigger_ref)["id"]
    trigger = client.post(f"/api/triggers/{trigger_id}/token")
    print(f"new url: {trigger['url']}")
