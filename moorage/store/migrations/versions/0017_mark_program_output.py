"""Program output in rows written before it was marked (issue 12, ``moorage/program_output``):
a viewer reads deployments, snapshots, restores and recovery points, and their logs and
errors held what programs printed (``echo $DB_PASSWORD``) as plain text. This marks it
as the writers now do, so a viewer reads the placeholder and an operator the same text
as before. Drills are left as they are: a viewer reads none of a drill's log or error.

What was output in the old forms, and is marked here (``MARK`` after it, to the end of
the line, as ``program_output.redacted`` reads a mark inside a line):

- after ``its last output: `` (a dead container, a sandbox), ``command exited N: `` (a
  health command, also inside "still waiting (...)" lines) and ``hook exited N: `` (a
  capture hook's failure): the rest of that line, and in an error every line after it;
  in a deployment's log the lines after it up to the next time-stamped one (output with
  line breaks continued the line);
- in a snapshot's log, each line a hook printed (Moorage wrote them indented by two
  spaces).

Marking hides more rather than less: text Moorage joined after output on its line is
hidden with it. A text holding ``MARK`` already was written marked, and is left alone.

Revision ID: 0017
Revises: 0016

"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARK = "\ue000"  # program_output.MARK when this was written
_INTRO = re.compile(r"(its last output: |command exited -?\d+: |hook exited -?\d+: )")
_STAMP = re.compile(r"\d\d:\d\d:\d\d ")


def _mark_line(line: str) -> tuple[str, bool]:
    """(the line with ``MARK`` after its first introducer, whether it had one)."""
    found = _INTRO.search(line)
    if found is None:
        return line, False
    return line[: found.end()] + MARK + line[found.end() :], True


def mark_error(text: str | None) -> str | None:
    """An error: from its first introducer on, everything is output."""
    if not text or MARK in text:
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        marked, found = _mark_line(line)
        if found:
            lines[i] = marked
            lines[i + 1 :] = [MARK + rest for rest in lines[i + 1 :]]
            break
    return "\n".join(lines)


def mark_deployment_log(text: str | None) -> str | None:
    """A deployment's log (``HH:MM:SS text`` lines): output after an introducer, and the
    lines that continued it (not time-stamped)."""
    if not text or MARK in text:
        return text
    out = []
    continued = False
    for line in text.split("\n"):
        if continued and line and not _STAMP.match(line):
            out.append(MARK + line)
            continue
        line, continued = _mark_line(line)
        out.append(line)
    return "\n".join(out)


def mark_snapshot_log(text: str | None) -> str | None:
    """A capture's log: the hooks' own lines (indented by two spaces) and output after an
    introducer."""
    if not text or MARK in text:
        return text
    out = []
    for line in text.split("\n"):
        if line.startswith("  "):
            out.append("  " + MARK + line[2:])
        else:
            out.append(_mark_line(line)[0])
    return "\n".join(out)


def mark_warnings(items: Any) -> Any:
    """A snapshot's warnings (a list of strings), each read as an error."""
    if not isinstance(items, list):
        return items
    return [mark_error(item) if isinstance(item, str) else item for item in items]


_FIELDS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "deployments": {"log": mark_deployment_log, "error": mark_error},
    "snapshots": {"log": mark_snapshot_log, "error": mark_error, "warnings": mark_warnings},
    "restores": {"error": mark_error},
    "recovery_points": {"error": mark_error, "restore_error": mark_error},
}


def _table(name: str, fields: dict[str, Callable[[Any], Any]]) -> sa.TableClause:
    typed = {"warnings": sa.JSON()}  # a JSON column: a list in, a list out, both databases
    return sa.table(name, sa.column("id"), *(sa.column(f, typed.get(f)) for f in fields))


def _rewrite(
    conn: sa.Connection, name: str, fields: dict[str, Callable[[Any], Any]], how: str
) -> None:
    """Each row's ``fields`` through their marking function (``how`` "mark"), or with
    every mark taken out (``how`` "unmark"); a row is written only when it changed."""
    table = _table(name, fields)
    for row in conn.execute(sa.select(table)).mappings().all():
        changed = {}
        for field, mark in fields.items():
            value = row[field]
            new = mark(value) if how == "mark" else _unmarked(value)
            if new != value:
                changed[field] = new
        if changed:
            conn.execute(table.update().where(table.c.id == row["id"]).values(**changed))


def _unmarked(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(MARK, "")
    if isinstance(value, list):
        return [_unmarked(item) for item in value]
    return value


def upgrade() -> None:
    """Mark the program output of rows written before it was marked."""
    conn = op.get_bind()
    for name, fields in _FIELDS.items():
        _rewrite(conn, name, fields, "mark")


def downgrade() -> None:
    """Take every mark out again (an older Moorage shows the text as it is)."""
    conn = op.get_bind()
    for name, fields in _FIELDS.items():
        _rewrite(conn, name, fields, "unmark")
