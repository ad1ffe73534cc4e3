"""The ``moorage`` command: ``moorage serve`` starts the server at once; every other
command goes through the typer app (``cli/commands.py``). Errors end as one line and
exit 1."""

from __future__ import annotations

import sys

from moorage.errors import MoorageError


def main() -> None:
    try:
        if sys.argv[1:] == ["serve"]:
            # Straight to the server: its process then carries none of the command
            # line's libraries (typer, click, rich: about 5 MiB of idle RSS, SPEC
            # section 8). ``moorage serve --help`` still goes through typer.
            from moorage.cli.serve import serve

            serve()
            return
        from moorage.cli.commands import app

        app()
    except MoorageError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(1)
