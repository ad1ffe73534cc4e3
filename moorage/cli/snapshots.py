"""``moorage snapshots``: capture, list, download, import, delete (with progress bars); clone
into a new workload, drill (prove a snapshot restores)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
)
from rich.text import Text

from moorage.cli.client import Client, CliError, ServerError
from moorage.cli.output import console, emit_json, human_size, table
from moorage.cli.refs import LATEST, LATEST_HELP, resolve, resolve_snapshot
from moorage.store.states import DrillStatus, RestoreStatus, SnapshotStatus

app = typer.Typer(
    help="Volume snapshots: capture, list, download, import, restore, clone, drill, delete."
)
CHUNK = 1024 * 1024
WorkloadRef = Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")]
SnapshotRef = Annotated[str, typer.Argument(help=LATEST_HELP)]
PACK_WAIT_SECONDS = 60.0
"""How long ``restore --wait`` waits for the replaced data to be packed before it says so."""


class SizeColumn(ProgressColumn):
    """``1.2 MiB of 40.0 MiB, 3.1 MiB/s``; the total and the speed left out while they are
    not known (rich's own columns print ``0/? bytes`` and ``?`` then)."""

    def render(self, task: Task) -> Text:
        text = human_size(int(task.completed))
        if task.total is not None:
            text += f" of {human_size(int(task.total))}"
        if task.speed:
            text += f", {human_size(int(task.speed))}/s"
        return Text(text, style="progress.download")


def _bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        SizeColumn(),
        console=console,
        transient=False,
    )


@app.command("capture")
def capture(
    workload: WorkloadRef,
    volume: Annotated[
        list[str] | None, typer.Option("--volume", help="Repeat; all if absent")
    ] = None,
    mode: Annotated[str, typer.Option(help="stop, pause or none")] = "stop",
    wait: Annotated[bool, typer.Option("--wait/--no-wait")] = True,
) -> None:
    """Capture a snapshot of a workload's volumes and follow its progress."""
    client = Client()
    target = resolve(client, workload)
    snap = client.post(
        f"/api/workloads/{target['id']}/snapshots", {"volumes": volume, "mode": mode}
    )
    print(f"capturing snapshot {snap['id']} of {target['name']} ({mode})")
    if not wait:
        return
    path = f"/api/workloads/{target['id']}/snapshots/{snap['id']}"
    with _bar() as bar:
        task = bar.add_task("capturing", total=None)
        while snap["status"] == SnapshotStatus.CAPTURING:
            time.sleep(0.5)
            snap = client.get(path)
            bar.update(task, completed=snap["progress_bytes"], total=snap["total_bytes"] or None)
    if snap["status"] != SnapshotStatus.READY:
        raise CliError(f"capture failed: {snap['error']}")
    for warning in snap["warnings"]:
        console.print(f"warning: {warning}", markup=False)
    size = f"{human_size(snap['size'])} ({snap['size']} bytes)"
    print(f"snapshot {snap['id']} ready: {size}, sha256 {snap['sha256']}")


@app.command("list")
def list_snapshots(
    workload: WorkloadRef, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List a workload's snapshots, newest first."""
    client = Client()
    target = resolve(client, workload)
    items = client.get(f"/api/workloads/{target['id']}/snapshots")["items"]
    if as_json:
        emit_json(items)
        return
    rows = [{**s, "volumes": ", ".join(s["volumes"]), "size": human_size(s["size"])} for s in items]
    table(
        rows,
        ["id", "created_at", "origin", "mode", "status", "volumes", "size"],
        empty=f"No snapshots yet: moorage snapshots capture {workload}",
    )


@app.command("download")
def download(
    workload: WorkloadRef,
    snapshot_ref: SnapshotRef,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Download an archive; its SHA-256 is checked against the server's."""
    client = Client()
    target = resolve(client, workload)
    snapshot_id = resolve_snapshot(client, target, snapshot_ref)
    dest = output or Path(f"{snapshot_id}.tar.zst")
    url = f"/api/workloads/{target['id']}/snapshots/{snapshot_id}/archive"
    digest = hashlib.sha256()
    partial = dest.with_name(dest.name + ".partial")
    try:
        with client.stream("GET", url) as response, partial.open("wb") as out, _bar() as bar:
            task = bar.add_task(
                "downloading", total=int(response.headers.get("content-length", 0)) or None
            )
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                bar.advance(task, len(chunk))
            expected = response.headers.get("x-moorage-sha256", "")
        if expected and digest.hexdigest() != expected:
            raise CliError("the download does not match the server's SHA-256; try again")
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    print(f"saved {dest} (sha256 {digest.hexdigest()})")


@app.command("import")
def import_archive(workload: WorkloadRef, archive: Path) -> None:
    """Upload an archive taken elsewhere; the server verifies it before it is ready."""
    client = Client()
    target = resolve(client, workload)
    try:
        size = archive.stat().st_size
    except OSError as exc:
        raise CliError(f"cannot read {archive}: {exc.strerror}") from None
    with _bar() as bar:
        task = bar.add_task("uploading", total=size)

        def chunks() -> Iterator[bytes]:
            with archive.open("rb") as src:
                while chunk := src.read(CHUNK):
                    bar.advance(task, len(chunk))
                    yield chunk

        snap = client.request_raw(
            "POST",
            f"/api/workloads/{target['id']}/snapshots/import",
            content=chunks(),
            headers={"Content-Type": "application/zstd", "Content-Length": str(size)},
        )
    print(f"imported snapshot {snap['id']}: {len(snap['volumes'])} volume(s), ready")


@app.command("delete")
def delete(
    workload: WorkloadRef,
    snapshot_ref: SnapshotRef,
    yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
) -> None:
    """Delete a snapshot and its archive."""
    client = Client()
    target = resolve(client, workload)
    snapshot_id = resolve_snapshot(client, target, snapshot_ref)
    if not yes:
        typer.confirm(f"Delete snapshot {snapshot_id} of {target['name']}?", abort=True)
    client.delete(f"/api/workloads/{target['id']}/snapshots/{snapshot_id}")
    print(f"deleted snapshot {snapshot_id}")


@app.command("restore")
def restore(
    workload: WorkloadRef,
    snapshot_ref: SnapshotRef,
    confirm: Annotated[
        str, typer.Option("--confirm", help="The workload's name: a restore replaces its live data")
    ],
    volume: Annotated[
        list[str] | None, typer.Option("--volume", help="Repeat; all if absent")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait")] = True,
) -> None:
    """Restore a snapshot onto the workload's live volumes (admin). The data it replaces is
    kept as a pre-restore snapshot."""
    client = Client()
    target = resolve(client, workload)
    if confirm != target["name"]:
        raise CliError(_confirm_hint(target, confirm))
    snapshot_id = resolve_snapshot(client, target, snapshot_ref)
    path = f"/api/workloads/{target['id']}/snapshots/{snapshot_id}/restore"
    try:
        response = client.raw_post(
            path, {"volumes": volume} if volume else None, headers={"X-Confirm-Restore": confirm}
        )
    except ServerError as exc:  # renamed meanwhile: say it in CLI terms, not as a header
        if exc.code != "confirmation_required":
            raise
        hint = _confirm_hint(client.get(f"/api/workloads/{target['id']}"), confirm)
        raise CliError(hint) from None
    print(f"restoring snapshot {snapshot_id} onto {target['name']} ({response['id']})")
    if not wait:
        return
    status_path = f"/api/workloads/{target['id']}/restores/{response['id']}"
    with _bar() as bar:
        task = bar.add_task("restoring", total=response["total_bytes"] or None)
        while response["status"] == RestoreStatus.RUNNING:
            time.sleep(0.5)
            response = client.get(status_path)
            bar.update(
                task,
                completed=response["progress_bytes"],
                description=f"restoring: {response['phase']}",
            )
    if response["status"] != RestoreStatus.SUCCEEDED:
        raise CliError(f"restore {response['status']}: {response['error']}")
    print(f"restored {', '.join(response['volumes'])}")
    deadline = time.monotonic() + PACK_WAIT_SECONDS
    while not _packed(response) and time.monotonic() < deadline:
        time.sleep(0.5)
        response = client.get(status_path)
    print(_replaced_data(response))


def _confirm_hint(target: dict[str, Any], confirm: str) -> str:
    return (
        f"--confirm {confirm!r} is not the workload's name: a restore replaces the live data "
        f"of {target['name']}; pass --confirm {target['name']}"
    )


def _packed(restore: dict[str, Any]) -> bool:
    """The replaced data has its outcome: a ready pre-restore snapshot, or kept paths."""
    return bool(restore["pre_restore_snapshot_id"] or restore.get("kept_paths"))


def _replaced_data(restore: dict[str, Any]) -> str:
    """What became of the data a restore replaced, in a sentence or two."""
    snapshot = restore["pre_restore_snapshot_id"]
    kept = restore.get("kept_paths") or []
    if not kept:
        if snapshot is None:
            return "the replaced data is still being packed into a pre-restore snapshot"
        return f"the replaced data is snapshot {snapshot}"
    lines = [f"the replaced data is snapshot {snapshot}, but not all of it" if snapshot else ""]
    lines += [f"kept on disk: {path}" for path in kept]
    lines.append(f"why: {restore.get('kept_reason') or 'unknown'}")
    return "\n".join(line for line in lines if line)


@app.command("clone")
def clone(
    workload: WorkloadRef,
    snapshot_ref: SnapshotRef,
    name: Annotated[str, typer.Argument(help="The new workload's name")],
    stage: Annotated[
        str | None, typer.Option("--stage", help="A stage of the project; the source's if absent")
    ] = None,
    deploy: Annotated[bool, typer.Option("--deploy/--no-deploy")] = False,
) -> None:
    """Restore a snapshot into a NEW workload (same kind, config, env; volumes of its own).
    The source is only read."""
    client = Client()
    target = resolve(client, workload)
    snapshot_id = resolve_snapshot(client, target, snapshot_ref)
    body: dict[str, Any] = {"name": name, "deploy": deploy}
    if stage is not None:
        body["stage"] = stage
    made = client.post(f"/api/workloads/{target['id']}/snapshots/{snapshot_id}/clone", body)
    print(
        f"cloned snapshot {snapshot_id} of {target['name']} into {made['name']} "
        f"({made['id']}, stage {made['stage']})" + ("; its deploy is queued" if deploy else "")
    )


@app.command("drill")
def drill(
    workload: WorkloadRef,
    snapshot_ref: SnapshotRef = LATEST,
    http: Annotated[
        str | None, typer.Option("--http", help="Path to GET in the sandbox (with --port)")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Container port for --http")] = None,
    exec_: Annotated[
        list[str] | None,
        typer.Option("--exec", help="A command to run in the sandbox; repeat for each argument"),
    ] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds (60)")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait")] = True,
) -> None:
    """Prove a snapshot restores: restore it into a sandbox, start it, run the check (the
    workload's own health check by default), remove the sandbox. Exits 1 when it fails."""
    client = Client()
    target = resolve(client, workload)
    snapshot_id = resolve_snapshot(client, target, snapshot_ref)
    check: dict[str, Any] = {}
    if http is not None:
        check.update(http=http, port=port)
    if exec_:
        check["exec"] = exec_
    if timeout is not None:
        check["timeout_s"] = timeout
    base = f"/api/workloads/{target['id']}/snapshots/{snapshot_id}/drills"
    response = client.post(base, {"check": check} if check else None)
    print(f"drilling snapshot {snapshot_id} of {target['name']} ({response['id']})")
    if not wait:
        return
    phase = ""
    while response["status"] == DrillStatus.RUNNING:
        if response["phase"] != phase:
            phase = response["phase"]
            print(f"  {phase}")
        time.sleep(0.5)
        response = client.get(f"{base}/{response['id']}")
    print(response["log"])
    if response["status"] != DrillStatus.PASSED:
        raise CliError(f"drill failed: {response['error']}")
    print(f"passed: snapshot {snapshot_id} restores")
