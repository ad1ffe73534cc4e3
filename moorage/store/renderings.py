"""Renderings of the store: an answer built from rows, kept while no commit could have
changed it, for one store generation (``Database.generation``).

``Database.generation`` is bumped by every commit that changes a watched table. A
rendering made at generation g holds every commit counted up to g, so a reader that
saw generation w may be served any rendering made at w or later: it never sees less
than what was committed before it asked. A stale key is rebuilt by one caller at a
time (single flight); the others wait for that rebuild, and take it when it is new
enough for them, instead of each running the same query. Readers never wait for a
writer: only for a rebuild, which reads.

It lives beside ``db.py`` because its one promise is the generation counter's: it
knows nothing of what it renders (the workload list is ``services/listing.py``'s).

``RowRenderings`` keeps the other half cheap: while deploys commit one after another,
nearly every read finds a new generation, but between two of them only the rows that
changed need rendering again. A row's rendering is kept under every value of the row,
so a changed value is a new key and nothing has to be invalidated.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from moorage.store.db import Database

MAX_KEYS = 256
MAX_ROWS = 8192
"""Rows kept by a ``RowRenderings``: past it the whole cache starts again (each row
renders once more)."""


@dataclass(frozen=True)
class _Rendering:
    generation: int
    body: bytes


class RenderCache:
    """Renderings per key, each valid for the generation it was begun at (see the module
    docstring)."""

    def __init__(self, db: Database, *, max_keys: int = MAX_KEYS) -> None:
        self.db = db
        self.max_keys = max_keys
        self._renderings: dict[Hashable, _Rendering] = {}
        self._flights: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        self.rebuilds = 0
        """How many times ``build`` ran: for tests and benchmarks."""

    def fresh(self, key: Hashable) -> bytes | None:
        """The rendering of ``key`` if it is current, without waiting; else None."""
        rendering = self._renderings.get(key)
        if rendering is not None and rendering.generation >= self.db.generation:
            return rendering.body
        return None

    def get(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """A rendering of ``key`` at least as new as the generation now; built here, or
        by the caller already building it. Blocks: call it from a worker thread."""
        wanted = self.db.generation
        rendering = self._renderings.get(key)
        if rendering is not None and rendering.generation >= wanted:
            return rendering.body
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            rendering = self._renderings.get(key)
            if rendering is not None and rendering.generation >= wanted:
                return rendering.body  # built while this caller waited
            generation = self.db.generation  # before the query: a later commit bumps it
            body = build()
            self.rebuilds += 1
            with self._lock:
                if len(self._renderings) >= self.max_keys and key not in self._renderings:
                    self._renderings.clear()
                    self._flights = {k: v for k, v in self._flights.items() if v.locked()}
                self._renderings[key] = _Rendering(generation, body)
            return body


def row_key(row: Sequence[Any]) -> tuple[Any, ...]:
    """Every value of ``row`` in a hashable form, each with its type: a dict or list as
    its canonical JSON (sorted keys; a value JSON cannot hold by its ``repr``), anything
    else as it is (text, numbers, instants, enums, None). The type keeps ``True``, ``1``
    and ``1.0``, or a dict and a string holding its JSON, apart: two rows have the same
    key only if they hold the same values of the same types."""
    return tuple(
        (type(v), json.dumps(v, sort_keys=True, separators=(",", ":"), default=repr))
        if isinstance(v, dict | list)
        else (type(v), v)
        for v in row
    )


class RowRenderings:
    """Rendered rows (bytes), each kept under ``row_key`` of the row it was made from.
    ``render`` must be a function of the row's values alone."""

    def __init__(self, *, max_rows: int = MAX_ROWS) -> None:
        self.max_rows = max_rows
        self._rows: dict[tuple[Any, ...], bytes] = {}
        self.rendered = 0
        """How many rows ``render`` was called for: for tests and benchmarks."""

    def each(self, rows: Iterable[Sequence[Any]], render: Callable[[Any], bytes]) -> list[bytes]:
        """The rendering of each row, in order: kept ones as they are, others rendered
        now and kept. Safe from several threads (two may render one new row twice)."""
        out = []
        for row in rows:
            key = row_key(row)
            body = self._rows.get(key)
            if body is None:
                body = render(row)
                self.rendered += 1
                if len(self._rows) >= self.max_rows:
                    self._rows = {}
                self._rows[key] = body
            out.append(body)
        return out
