"""``moorage dns``: the DNS providers Moorage keeps domains' records with (SPEC section 12,
admin): list them (credentials masked), set one from a file, delete one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from moorage.cli.client import Client, CliError
from moorage.cli.config_input import read_document
from moorage.cli.output import emit_json, table

app = typer.Typer(help="DNS providers for domains' records and wildcard certificates (admin).")
KINDS_HELP = "rfc2136 (server, zone, key_name, key_secret) or cloudflare (api_token, zone_id)"


def _config(path: Path) -> dict[str, Any]:
    value = read_document(path)
    if not isinstance(value, dict):
        raise CliError(f"{path} must hold the provider's settings as a mapping: {KINDS_HELP}")
    return value


@app.command("list")
def dns_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """The DNS providers, their secrets masked."""
    items = Client().get("/api/dns-providers")["items"]
    if as_json:
        emit_json(items)
        return
    rows = [
        {**p, "settings": ", ".join(f"{k}={v}" for k, v in sorted(p["config"].items()))}
        for p in items
    ]
    table(rows, ["name", "kind", "settings"], empty="no DNS providers")


@app.command("set")
def dns_set(
    name: Annotated[str, typer.Argument(help="A slug; domains name the provider by it")],
    kind: Annotated[str, typer.Option("--kind", help="rfc2136 or cloudflare")],
    config: Annotated[Path, typer.Option("--config", help=f"JSON or YAML file: {KINDS_HELP}")],
) -> None:
    """Add a provider, or replace its settings (a secret left masked keeps its value)."""
    made = Client().put(f"/api/dns-providers/{name}", {"kind": kind, "config": _config(config)})
    print(f"{made['name']}: {made['kind']}")


@app.command("delete")
def dns_delete(name: Annotated[str, typer.Argument(help="The provider's name")]) -> None:
    """Forget a provider (refused while a domain names it)."""
    Client().delete(f"/api/dns-providers/{name}")
    print("deleted")
