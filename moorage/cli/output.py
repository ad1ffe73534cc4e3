"""Printing for the CLI: rich tables for people, --json for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, empty: str) -> None:
    if not rows:
        console.print(empty)
        return
    out = Table(*columns)
    for row in rows:
        out.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(out)
