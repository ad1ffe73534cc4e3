"""What a read can answer without the request's session: credentials, valid for one
store generation (``Database.generations``). The rendered workload list is
``services/listing.py``'s, over ``store/renderings.py``.

``CredentialCache``: who a bearer token or a session cookie is, kept while no user,
token or session row changed (a revoked token, a new role, a logout or a password
change applies at once) and for at most ``LAST_USED_EVERY``, after which the store
is asked again and records the token's use. Only credentials the store knew are kept,
by their digest. A cached read thus needs no worker thread and no database at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi.concurrency import run_in_threadpool

from moorage.security import secrets as sec
from moorage.security.roles import Actor
from moorage.services import users
from moorage.store.db import Database


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
    return (at - datetime.now(UTC)).total_seconds()
