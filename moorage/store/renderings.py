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
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from moorage.store.db import Database

MAX_KEYS = 256


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
