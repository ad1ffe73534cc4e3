"""Printing for the CLI: rich tables for people, --json for scripts.

Tables never cut an id (a restore needs the whole snapshot id, even at 80 columns): id
columns keep their full width and other columns fold instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()

_ISO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]00:00)?$")
_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON with sorted keys, for scripts."""
    print(json.dumps(data, indent=2, sort_keys=True))


def human_size(size: int | None) -> str:
    """Bytes for people: ``512 B``, ``1.2 MiB``; empty for an unknown size."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in _UNITS[:-1]:
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {_UNITS[-1]}"


def cell(value: Any) -> str:
    """One table cell: nothing for null, a UTC timestamp without its fraction, else str()."""
    if value is None:
        return ""
    text = str(value)
    match = _ISO_TIME.match(text)
    if match and match.group(4):  # only times the server sent in UTC are shortened
        return f"{match.group(1)} {match.group(2)}"
    return text


def is_id_column(column: str) -> bool:
    """Columns whose values are ids: shown whole, never wrapped or cut."""
    return column == "id" or column.endswith("_id")


# A text column narrower than this is no use to read: below it, rows print as records.
NARROWEST_TEXT = 8


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, empty: str) -> None:
    """Print ``rows`` as a table of ``columns``, or the ``empty`` hint when there are none.

    Ids are shown whole. When the terminal is too narrow for whole ids and a readable
    width of every other column, each row prints as a record instead (``column  value``
    lines, a blank line between rows, like psql's expanded display), so no column is
    squeezed out of sight."""
    if not rows:
        console.print(empty)
        return
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    narrowest = (
        sum(
            w if is_id_column(c) else min(w, NARROWEST_TEXT)
            for c, w in zip(columns, widths, strict=True)
        )
        + 3 * len(columns)
        + 1
    )  # rich's borders and padding: "│ " ... " │"
    if narrowest > console.width:
        _records(columns, cells)
        return
    out = Table()
    for i, column in enumerate(columns):
        if is_id_column(column):
            widest = max(len(line[i]) for line in cells)
            out.add_column(column, no_wrap=True, min_width=max(widest, len(column)))
        else:
            out.add_column(column, overflow="fold")
    for line in cells:
        out.add_row(*(Text(text) for text in line))  # Text: a value is never markup
    console.print(out)


def _records(columns: Sequence[str], cells: list[list[str]]) -> None:
    """Rows as records: one ``column  value`` line per column, a blank line between."""
    label = max(len(c) for c in columns)
    for n, line in enumerate(cells):
        if n:
            console.print()
        for column, text in zip(columns, line, strict=True):
            console.print(Text(f"{column.ljust(label)}  {text}"), soft_wrap=True)
