"""``moorage targets``, ``moorage backup``, ``moorage instance`` and the off-site parts of
``apps`` and ``snapshots`` (SPEC section 11)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from moorage.cli.client import Client, CliError
from moorage.cli.output import emit_json, human_size, table
from moorage.cli.refs import LATEST_HELP, resolve, resolve_snapshot

targets_app = typer.Typer(help="Storage targets for off-site copies (admin).")
backup_app = typer.Typer(help="Back this instance up to a storage target (admin).")
instance_app = typer.Typer(help="Bring a whole instance back from a storage target (offline).")
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON")]


def target_id(client: Client, ref: str) -> str:
    """A target by id (``st_...``) or by name."""
    if ref.startswith("st_"):
        return ref
    for t in client.get("/api/storage-targets")["items"]:
        if t["name"] == ref:
            return str(t["id"])
    raise CliError(f"no storage target named {ref!r} (moorage targets list)")


def _spec(path: Path) -> dict[str, Any]:
    """A JSON file ``{"kind", "config"}``."""
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict) or "kind" not in spec:
        raise CliError(f'{path} must be JSON {{"kind": "sftp|s3|local", "config": {{...}}}}')
    return spec


def _passphrase(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Target passphrase", hide_input=True))


@targets_app.command("list")
def targets_list(as_json: JsonOut = False) -> None:
    """The storage targets, credentials masked."""
    items = Client().get("/api/storage-targets")["items"]
    if as_json:
        emit_json(items)
        return
    table(items, ["id", "name", "kind", "last_test_at", "last_test_error"], empty="no targets")


@targets_app.command("create")
def targets_create(
    name: Annotated[str, typer.Argument(help="A slug")],
    spec: Annotated[Path, typer.Option("--spec", help='JSON file {"kind", "config"}')],
    passphrase_stdin: Annotated[bool, typer.Option("--passphrase-stdin")] = False,
) -> None:
    """Add a target (connects to it, leaves or adopts its key there)."""
    body = {**_spec(spec), "name": name, "passphrase": _passphrase(passphrase_stdin)}
    made = Client().post("/api/storage-targets", body)
    print(made["id"])


@targets_app.command("test")
def targets_test(target: str) -> None:
    """Write, read back and delete a probe; exit 1 when it fails."""
    client = Client()
    result = client.post(f"/api/storage-targets/{target_id(client, target)}/test")
    for step in result["steps"]:
        print(f"{step['step']}: {step['ms']} ms")
    if not result["ok"]:
        raise CliError(f"{result['error']['message']} ({result['error']['code']})")
    print("ok")


@targets_app.command("delete")
def targets_delete(target: str) -> None:
    """Forget a target; what it holds stays there."""
    client = Client()
    client.delete(f"/api/storage-targets/{target_id(client, target)}")
    print("deleted")


@targets_app.command("catalog")
def targets_catalog(target: str, as_json: JsonOut = False) -> None:
    """What the target holds."""
    client = Client()
    items = client.get(f"/api/storage-targets/{target_id(client, target)}/catalog")["items"]
    if as_json:
        emit_json(items)
        return
    for item in items:
        item["size"] = human_size(item["size"])
    table(
        items,
        ["key", "workload_name", "snapshot_id", "created_at", "size", "error"],
        empty="the target holds no copies",
    )


def snapshots_copy(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
    snapshot: Annotated[str, typer.Argument(help=LATEST_HELP)],
    target: Annotated[str, typer.Option("--target", help="Target id or name")],
) -> None:
    """Copy a snapshot to a storage target now (it is verified in the background)."""
    client = Client()
    w = resolve(client, workload)
    sid = resolve_snapshot(client, w, snapshot)
    row = client.post(
        f"/api/workloads/{w['id']}/snapshots/{sid}/copies",
        {"target_id": target_id(client, target)},
    )
    print(f"{sid}: copy to {row['target_id']} {row['status']}")


def apps_offsite(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
    target: Annotated[str | None, typer.Option("--target", help="Set: target id or name")] = None,
    keep_last: Annotated[int | None, typer.Option()] = None,
    keep_daily: Annotated[int | None, typer.Option()] = None,
    keep_weekly: Annotated[int | None, typer.Option()] = None,
    off: Annotated[bool, typer.Option("--off", help="Stop copying")] = False,
    as_json: JsonOut = False,
) -> None:
    """Show a workload's off-site policy, set it (--target ...) or stop it (--off)."""
    client = Client()
    w = resolve(client, workload)
    url = f"/api/workloads/{w['id']}/offsite"
    if off:
        client.delete(url)
        print("off-site copies stopped")
        return
    if target is not None:
        body = {
            "target_id": target_id(client, target),
            "keep_last": keep_last,
            "keep_daily": keep_daily,
            "keep_weekly": keep_weekly,
        }
        policy = client.put(url, body)
    else:
        policy = client.get(url)
    if as_json:
        emit_json(policy)
        return
    if policy["target_id"] is None:
        print("no off-site copies")
        return
    keep = ", ".join(
        f"{k}={policy[k]}" for k in ("keep_last", "keep_daily", "keep_weekly") if policy[k]
    )
    print(
        f"copies to {policy['target_id']} ({keep or 'keep all'})"
        + (" STALE" if policy["stale"] else "")
    )


@backup_app.command("create")
def backup_create(
    target: Annotated[str, typer.Option("--target", help="Target id or name")],
) -> None:
    """Put the database (online copy) and the instance key on a target, verified."""
    client = Client()
    made = client.post("/api/instance/backups", {"target_id": target_id(client, target)})
    print(f"{made['key']} ({human_size(made['size'])})")


@instance_app.command("restore")
def instance_restore(
    target: Annotated[Path, typer.Option("--target", help='JSON file {"kind", "config"}')],
    passphrase_stdin: Annotated[bool, typer.Option("--passphrase-stdin")] = False,
) -> None:
    """On a fresh machine: the newest instance backup on the target into the empty
    MOORAGE_DATA_DIR. Then run 'moorage serve' and restore each workload's snapshots."""
    from moorage.offsite import instance
    from moorage.server import load_registry
    from moorage.settings import Settings

    spec = _spec(target)
    settings = Settings.from_env()
    info = instance.restore(
        settings, load_registry(), spec["kind"], spec["config"], _passphrase(passphrase_stdin)
    )
    print(f"restored the backup of {info.get('created_at')} into {settings.data_dir}")
