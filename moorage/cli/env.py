"""``moorage apps env``: a workload's environment variables (operator).

The API replaces the whole set (``PUT .../env``); these commands read it, change the keys
named, and put it back. A secret reads as null, and null written back keeps its value,
so a secret never passes through the CLI unless it is being set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from dotenv import dotenv_values
from dotenv.parser import parse_stream

from moorage.cli.client import Client, CliError
from moorage.cli.output import emit_json, table
from moorage.cli.refs import resolve

app = typer.Typer(help="Environment variables of a workload: list, set, unset.")

MASK = "********"


def _path(workload: dict[str, Any]) -> str:
    return f"/api/workloads/{workload['id']}/env"


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """``["A=1", "B=x=y"]`` -> ``{"A": "1", "B": "x=y"}``."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"give KEY=VALUE, not {pair!r}")
        values[key] = value
    return values


def read_env_file(path: Path) -> dict[str, str]:
    """A ``.env`` file, read by python-dotenv (quotes, ``export``, comments, multi-line);
    a line it cannot read refuses the whole file (``CliError``), as the UI's paste does.
    ``${VAR}`` is kept as written: never filled in from the caller's own environment
    (which holds MOORAGE_TOKEN, among others)."""
    if path.is_dir():
        raise CliError(f"cannot read {path}: it is a directory; give a .env file")
    if not path.is_file():
        raise CliError(f"cannot read {path}: no such file")
    try:
        with path.open(encoding="utf-8") as stream:
            broken = [str(b.original.line) for b in parse_stream(stream) if b.error]
        if broken:  # python-dotenv would skip them with a warning: set nothing instead
            raise CliError(
                f"{path}: these lines are not KEY=value: {', '.join(broken[:20])}; nothing was set"
            )
        values = dotenv_values(path, interpolate=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    missing = [key for key, value in values.items() if value is None]
    if missing:
        raise CliError(f"{path}: {', '.join(missing)} has no value (write KEY=VALUE)")
    return {key: value for key, value in values.items() if value is not None}


def kept(current: dict[str, Any], drop: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The current set as a PUT body: plain values as read, secrets as null (kept)."""
    return {
        key: {"value": None if v["secret"] else v["value"], "secret": v["secret"]}
        for key, v in current.items()
        if key not in drop
    }


def masked(current: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for a table, secrets masked."""
    return [
        {"key": key, "value": MASK if v["secret"] else v["value"], "secret": v["secret"]}
        for key, v in sorted(current.items())
    ]


@app.command("list")
def list_env(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List a workload's variables; secrets are masked."""
    client = Client()
    current = client.get(_path(resolve(client, workload)))
    if as_json:
        emit_json(current)
        return
    table(
        masked(current),
        ["key", "value", "secret"],
        empty=f"No variables yet: moorage apps env set {workload} KEY=VALUE",
    )


@app.command("set")
def set_env(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
    pairs: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE, repeatable")] = None,
    secret: Annotated[
        bool | None,
        typer.Option(
            "--secret/--no-secret",
            help="Store these values as secrets (masked on read); by default a variable that "
            "is a secret stays one",
        ),
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="Read KEY=VALUE lines from a .env file")
    ] = None,
) -> None:
    """Set variables, keeping the others; takes effect at the next deploy."""
    wanted = read_env_file(from_file) if from_file is not None else {}
    wanted.update(parse_assignments(pairs or []))
    if not wanted:
        raise CliError("nothing to set: give KEY=VALUE or --from-file .env")
    client = Client()
    target = resolve(client, workload)
    current = client.get(_path(target))
    body = kept(current)

    def stays_secret(key: str) -> bool:
        if secret is not None:
            return secret
        return bool(current.get(key, {}).get("secret", False))

    body.update(
        {key: {"value": value, "secret": stays_secret(key)} for key, value in wanted.items()}
    )
    client.put(_path(target), body)
    secrets = sum(1 for key in wanted if stays_secret(key))
    print(
        f"set {len(wanted)} variable(s) of {target['name']} ({secrets} secret): "
        f"{', '.join(sorted(wanted))}"
    )
    print(f"deploy to apply: moorage apps deploy {target['id']}")


@app.command("unset")
def unset_env(
    workload: Annotated[str, typer.Argument(help="Workload id, name or project/stage/name")],
    keys: Annotated[list[str], typer.Argument(help="Variable names")],
) -> None:
    """Remove variables; takes effect at the next deploy."""
    client = Client()
    target = resolve(client, workload)
    current = client.get(_path(target))
    unknown = sorted(set(keys) - set(current))
    if unknown:
        raise CliError(f"{target['name']} has no variable {', '.join(unknown)}")
    client.put(_path(target), kept(current, drop=set(keys)))
    print(f"unset {', '.join(keys)} of {target['name']}")
