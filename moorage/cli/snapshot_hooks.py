"""``moorage apps hooks``: the commands run before and after each capture (operator; SPEC
section 10). A command is given as one string, split like a shell line (``shlex``) into
the argv that ``docker exec`` runs; no shell runs it unless it says ``sh -c '...'``."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer

from moorage.cli.client import Client, CliError
from moorage.cli.output import emit_json
from moorage.cli.refs import resolve

app = typer.Typer(help="Capture hooks of a workload: show, set, clear.")
Ref = Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")]


def _hook(command: str | None, service: str | None) -> dict[str, Any] | None:
    if command is None:
        if service is not None:
            raise CliError("a hook's --*-service goes with its command")
        return None
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise CliError(f"cannot split the command {command!r}: {exc}") from None
    if not argv:
        raise CliError("a hook's command names a program")
    return {"command": argv, **({"service": service} if service else {})}


def _print(name: str, hooks: dict[str, Any]) -> None:
    for phase in ("before", "after"):
        hook = hooks.get(phase)
        if hook is None:
            print(f"{phase}: none")
            continue
        where = f" (service {hook['service']})" if hook.get("service") else ""
        print(f"{phase}{where}: {shlex.join(hook['command'])}")
    print(f"timeout: {hooks['timeout_s']} s per hook ({name})")


@app.command("show")
def show(workload: Ref, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show the workload's capture hooks."""
    client = Client()
    target = resolve(client, workload)
    hooks = client.get(f"/api/workloads/{target['id']}/snapshot-hooks")
    if as_json:
        emit_json(hooks)
        return
    _print(target["name"], hooks)


@app.command("set")
def set_hooks(
    workload: Ref,
    before: Annotated[
        str | None, typer.Option(help="Run before each capture; failing fails it")
    ] = None,
    before_service: Annotated[
        str | None, typer.Option(help="compose: the service it runs in")
    ] = None,
    after: Annotated[
        str | None, typer.Option(help="Run after each capture, whatever happened")
    ] = None,
    after_service: Annotated[
        str | None, typer.Option(help="compose: the service it runs in")
    ] = None,
    timeout: Annotated[int, typer.Option(help="Seconds each hook may take (1-3600)")] = 300,
) -> None:
    """Replace both hooks (one left out is removed), e.g. --before "pg_dump -f /data/db.sql app"."""
    body: dict[str, Any] = {"timeout_s": timeout}
    for phase, command, service in (
        ("before", before, before_service),
        ("after", after, after_service),
    ):
        hook = _hook(command, service)
        if hook is not None:
            body[phase] = hook
    if len(body) == 1:
        raise CliError("give --before and/or --after (or `moorage apps hooks clear`)")
    client = Client()
    target = resolve(client, workload)
    _print(target["name"], client.put(f"/api/workloads/{target['id']}/snapshot-hooks", body))


@app.command("clear")
def clear(workload: Ref) -> None:
    """Remove both hooks."""
    client = Client()
    target = resolve(client, workload)
    client.put(f"/api/workloads/{target['id']}/snapshot-hooks", {})
    print(f"capture hooks of {target['name']}: none")
