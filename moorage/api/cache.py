"""What a read can answer without the store: renderings and credentials, each valid
for one store generation (``Database.generations``).

``RenderCache``: rendered answers, rebuilt once per generation.

``Database.generation`` is bumped by every commit that changes a watched table. A
rendering made at generation g holds every commit counted up to g, so a reader that
saw generation w may be served any rendering made at w or later: it never sees less
than what was committed before it asked. A stale key is rebuilt by one caller at a
time (single flight); the others wait for that rebuild, and take it when it is new
enough for them, instead of each running the same query. Readers never wait for a
writer: only for a rebuild, which reads.

``CredentialCache``: who a bearer token or a session cookie is, kept while no user,
token or session row changed (a revoked token, a new role, a logout or a password
change applies at once) and for at most ``LAST_USED_EVERY``, after which the store
is asked again and records the token's use. Only credentials the store knew are kept,
by their digest. A cached read thus needs no worker thread and no database at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime

from fastapi.concurrency import run_in_threadpool

from moorage.security import secrets as sec
from moorage.security.roles import Actor
from moorage.services import users
from moorage.store.db import Database
from moorage.store.tables import utcnow

MAX_KEYS = 256


@dataclass(frozen=True)
class _Rendering:
    generation: int
    body: bytes


class RenderCache:
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


@dataclass(frozen=True)
class _Credential:
    generation: int
    actor: Actor
    csrf: str
    until: float
    """``time.monotonic()`` after which the store is asked again."""


class CredentialCache:
    def __init__(self, db: Database, *, max_keys: int = 10_000) -> None:
        self.db = db
        self.max_keys = max_keys
        self._known: dict[str, _Credential] = {}

    def _current(self, key: str) -> _Credential | None:
        known = self._known.get(key)
        if (
            known is not None
            and known.generation == self.db.generations["credentials"]
            and time.monotonic() < known.until
        ):
            return known
        return None

    def _keep(self, key: str, credential: _Credential) -> None:
        if len(self._known) >= self.max_keys:
            self._known.clear()
        self._known[key] = credential

    async def token(self, token: str) -> Actor:
        """The actor of an API token; raises ``Unauthenticated`` for an unknown one."""
        key = "token:" + sec.digest(token)
        known = self._current(key)
        if known is None:
            known = await run_in_threadpool(self._load_token, key, token)
        return known.actor

    def _load_token(self, key: str, token: str) -> _Credential:
        generation = self.db.generations["credentials"]  # before the read
        with self.db.session() as session:
            actor = users.actor_for_token(session, token)  # records the use, once a minute
        until = time.monotonic() + users.LAST_USED_EVERY.total_seconds()
        known = _Credential(generation, actor, "", until)
        self._keep(key, known)
        return known

    async def cookie(self, cookie: str) -> tuple[Actor, str]:
        """The actor of a session cookie and its CSRF token; raises ``Unauthenticated``
        for an unknown or ended session."""
        key = "session:" + sec.digest(cookie)
        known = self._current(key)
        if known is None:
            known = await run_in_threadpool(self._load_cookie, key, cookie)
        return known.actor, known.csrf

    def _load_cookie(self, key: str, cookie: str) -> _Credential:
        generation = self.db.generations["credentials"]
        with self.db.session() as session:
            actor, csrf, expires = users.web_session_for_cookie(session, cookie)
        until = time.monotonic() + min(
            users.LAST_USED_EVERY.total_seconds(), _seconds_until(expires)
        )
        known = _Credential(generation, actor, csrf, until)
        self._keep(key, known)
        return known


def _seconds_until(at: datetime) -> float:
    return (at - utcnow()).total_seconds()
