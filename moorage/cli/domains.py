"""``moorage apps domains``: a workload's domains (SPEC section 12): list with their
certificate and DNS state, set (the whole list, as ``PUT .../domains`` does), clear."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from moorage.cli.client import Client, CliError
from moorage.cli.config_input import read_document
from moorage.cli.output import emit_json, table
from moorage.cli.refs import resolve

app = typer.Typer(help="Domains of a workload: list, set, clear.")

SPEC_HELP = (
    "HOST:PORT[:tls=acme|internal|off][:service=NAME][:dns=PROVIDER][:no-redirect], "
    "e.g. app.example.com:8080"
)
TLS = ("acme", "internal", "off")


def parse_spec(spec: str) -> dict[str, Any]:
    """``app.example.com:8080:tls=internal`` -> the API's domain object."""
    host, _, rest = spec.partition(":")
    port, _, options = rest.partition(":")
    if not host or not port.isdigit():
        raise CliError(f"a domain is {SPEC_HELP}; got {spec!r}")
    domain: dict[str, Any] = {"host": host, "port": int(port)}
    for option in filter(None, options.split(":")):
        key, sep, value = option.partition("=")
        if option == "no-redirect":
            domain["redirect_http"] = False
        elif sep and key == "tls" and value in TLS:
            domain["tls"] = value
        elif sep and key == "service" and value:
            domain["service"] = value
        elif sep and key == "dns" and value:
            domain["dns_provider"] = value
        else:
            raise CliError(f"domain {host}: unknown option {option!r} ({SPEC_HELP})")
    return domain


def _read_list(path: Path) -> list[dict[str, Any]]:
    value = read_document(path)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise CliError(f"{path} must hold a list of domain objects")
    return value


@app.command("list")
def list_domains(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List a workload's domains with their certificate and DNS record state."""
    client = Client()
    items = client.get(f"/api/workloads/{resolve(client, workload)['id']}/domains")["items"]
    if as_json:
        emit_json(items)
        return
    rows = [
        {
            **d,
            "redirect": "yes" if d["redirect_http"] and d["tls"] != "off" else "",
            "certificate": (
                f"{d['status']['certificate_issuer']} until "
                f"{d['status']['certificate_expires_at'][:10]}"
                if d["status"]["certificate_issuer"]
                else d["status"]["acme_error"] or ""
            ),
            "dns": d["status"]["dns_error"] or d["status"]["dns_state"],
            "dns_provider": d["dns_provider"] or "",
        }
        for d in items
    ]
    table(
        rows,
        ["host", "port", "tls", "redirect", "dns_provider", "dns", "certificate"],
        empty=f"No domains yet: moorage apps domains set {workload} {SPEC_HELP.split(', ')[1][5:]}",
    )


@app.command("set")
def set_domains(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
    specs: Annotated[list[str] | None, typer.Argument(help=SPEC_HELP)] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A JSON or YAML list of domain objects")
    ] = None,
) -> None:
    """Replace the workload's domain list; the proxy routes them at once."""
    domains = _read_list(file) if file is not None else []
    domains += [parse_spec(spec) for spec in specs or []]
    if not domains:
        raise CliError(f"give domains ({SPEC_HELP}) or --file; `clear` removes them all")
    _put(workload, domains)


@app.command("clear")
def clear_domains(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
) -> None:
    """Remove every domain of the workload (and the DNS records Moorage keeps for them)."""
    _put(workload, [])


def _put(workload: str, domains: list[dict[str, Any]]) -> None:
    client = Client()
    target = resolve(client, workload)
    saved = client.put(f"/api/workloads/{target['id']}/domains", domains)["items"]
    hosts = ", ".join(d["host"] for d in saved) or "none"
    print(f"domains of {target['name']}: {hosts}")
