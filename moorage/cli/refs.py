"""Names for ids: find a workload, trigger or snapshot the way a person names it.

Resolved in the CLI through the list endpoints, so the API keeps one way to address a
thing (its id). Every command that takes an id takes a name too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moorage.cli.client import Client, CliError, ServerError
from moorage.store.states import LATEST_ORIGINS

GROUPS = {"workload": "apps", "trigger": "triggers"}
LATEST = "latest"
"""A snapshot reference: the workload's newest ready snapshot a person or a schedule took
or imported (``states.LATEST_ORIGINS``: never a pre-restore snapshot or a checkpoint)."""
LATEST_HELP = (
    f"Snapshot id, or {LATEST!r}: the newest ready snapshot taken by hand, by a schedule "
    "or a recovery point, or imported (never a pre-restore snapshot or a deploy checkpoint)"
)


def resolve(client: Client, ref: str) -> dict[str, Any]:
    """Find a workload by id (``wl_...``), by ``project/stage/name``, or by its name alone
    when only one workload has it."""
    if ref.startswith("wl_"):
        return dict(client.get(f"/api/workloads/{ref}"))
    if ref.count("/") == 2:
        project, stage, name = ref.split("/")
        items = client.get("/api/workloads", project=project, stage=stage)["items"]
        found = [item for item in items if item["name"] == name]
    else:
        found = [item for item in client.get("/api/workloads")["items"] if item["name"] == ref]
    return _one(
        found, ref, "workload", "P/S/NAME", lambda w: f"{w['project']}/{w['stage']}/{w['name']}"
    )


def resolve_trigger(client: Client, ref: str) -> dict[str, Any]:
    """Find a trigger by id (``tr_...``), by ``kind/name``, or by its name alone when only
    one trigger has it."""
    if ref.startswith("tr_"):
        return dict(client.get(f"/api/triggers/{ref}"))
    kind, _, name = ref.rpartition("/")
    items = client.get("/api/triggers", kind=kind or None)["items"]
    found = [item for item in items if item["name"] == name]
    return _one(found, ref, "trigger", "KIND/NAME", lambda t: f"{t['kind']}/{t['name']}")


def _one(
    found: list[dict[str, Any]],
    ref: str,
    what: str,
    form: str,
    qualified: Callable[[dict[str, Any]], str],
) -> dict[str, Any]:
    """The one match of ``ref``, or an error that says how to name it."""
    if not found:
        raise CliError(f"no {what} {ref!r}; see moorage {GROUPS[what]} list")
    if len(found) > 1:
        names = ", ".join(sorted(qualified(item) for item in found))
        raise CliError(f"{len(found)} {what}s are named {ref!r} ({names}); name one as {form}")
    return dict(found[0])


def resolve_snapshot(client: Client, workload: dict[str, Any], ref: str) -> str:
    """A snapshot id of ``workload``: the id itself (checked to exist, so a command asks
    no question about a snapshot that is not there), or ``latest`` for its newest ready
    one of ``LATEST_ORIGINS``. Raises ``CliError`` naming the workload when there is none."""
    if ref != LATEST:
        try:
            client.get(f"/api/workloads/{workload['id']}/snapshots/{ref}")
        except ServerError as exc:
            if exc.status != 404:
                raise
            raise CliError(
                f"{workload['name']} has no snapshot {ref!r}: "
                f"moorage snapshots list {workload['name']}"
            ) from None
        return ref
    items = client.get(f"/api/workloads/{workload['id']}/snapshots")["items"]
    ready = [s for s in items if s["status"] == "ready" and s["origin"] in LATEST_ORIGINS]
    if not ready:  # the list is newest first
        raise CliError(
            f"{workload['name']} has no ready snapshot taken by hand, by a schedule or a "
            f"recovery point, or imported ({LATEST!r} passes over pre-restore snapshots and "
            f"deploy checkpoints: name one by id, see moorage snapshots list {workload['name']})"
        )
    return str(ready[0]["id"])
