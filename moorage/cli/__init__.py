"""The ``moorage`` command line: typer app, one module per command group, talks HTTP."""
