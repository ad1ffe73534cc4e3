"""``moorage apps volumes``: a workload's volume list (operator; ``absolute`` ones: admin).

``set`` replaces the whole list, as ``PUT .../volumes`` does, and creates nothing on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from moorage.cli.client import Client, CliError
from moorage.cli.config_input import read_document
from moorage.cli.output import emit_json, table
from moorage.cli.refs import resolve

app = typer.Typer(help="Volumes of a workload: list, set.")

SPEC_HELP = (
    "NAME:SCOPE:SOURCE:TARGET[:ro][:shared][:service=NAME], e.g. data:stage:web/data:/var/lib/web"
    " (a compose app names the service the bind goes to)"
)
FLAGS = {"ro": "read_only", "shared": "shared"}


def parse_spec(spec: str) -> dict[str, Any]:
    """``data:stage:web/data:/var/lib/web:ro`` -> the API's volume object."""
    parts = spec.split(":")
    if len(parts) < 4 or not all(parts[:4]):
        raise CliError(f"a volume is {SPEC_HELP}; got {spec!r}")
    name, scope, source, target, *flags = parts
    volume: dict[str, Any] = {"name": name, "scope": scope, "source": source, "target": target}
    for flag in flags:
        if flag.startswith("service=") and flag != "service=":
            volume["service"] = flag.removeprefix("service=")
            continue
        if flag not in FLAGS:
            raise CliError(f"volume {name}: unknown flag {flag!r} (ro, shared, service=NAME)")
        volume[FLAGS[flag]] = True
    return volume


def _read_list(path: Path) -> list[dict[str, Any]]:
    value = read_document(path)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise CliError(f"{path} must hold a list of volume objects")
    return value


@app.command("list")
def list_volumes(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List a workload's volumes with the host path each maps to."""
    client = Client()
    answer = client.get(f"/api/workloads/{resolve(client, workload)['id']}/volumes")
    items, uncovered = answer["items"], answer.get("not_covered", [])
    if as_json:
        emit_json(items)
        return
    rows = [
        {
            **v,
            "ro": "yes" if v["read_only"] else "",
            "service": v.get("service") or "",
            "host_path": v["host_path"] or v["problem"],
        }
        for v in items
    ]
    columns = ["name", "scope", "source", "target", "ro", "host_path"]
    if any(row["service"] for row in rows) or uncovered:
        columns.insert(4, "service")
    table(
        rows,
        columns,
        empty=f"No volumes yet: moorage apps volumes set {workload} {SPEC_HELP.split(', ')[0]}",
    )
    for v in uncovered:
        used = ", ".join(v["services"]) or "no service"
        print(f"not covered by snapshots: Compose volume {v['name']} ({used}); Docker keeps it")


@app.command("set")
def set_volumes(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
    specs: Annotated[list[str] | None, typer.Argument(help=SPEC_HELP)] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A JSON or YAML list of volume objects")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every volume")] = False,
) -> None:
    """Replace the workload's volume list; takes effect at the next deploy."""
    volumes = _read_list(file) if file is not None else []
    volumes += [parse_spec(spec) for spec in specs or []]
    if not volumes and not clear:
        raise CliError(f"give volumes ({SPEC_HELP}) or --file, or --clear to remove them all")
    if volumes and clear:
        raise CliError("--clear removes every volume; give either volumes or --clear")
    client = Client()
    target = resolve(client, workload)
    saved = client.put(f"/api/workloads/{target['id']}/volumes", volumes)["items"]
    names = ", ".join(v["name"] for v in saved) or "none"
    print(f"volumes of {target['name']}: {names}")
