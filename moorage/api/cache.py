"""What a read can answer without the request's session: credentials, valid for one
store generation (``Database.generations``). The rendered workload list is
``services/listing.py``'s, over ``store/renderings.py``.

``CredentialCache``: who a bearer token or a session cookie is, kept while no user,
token or session row changed (a revoked token, a new role, a logout or a password
change applies at once) and for at most ``LAST_USED_EVERY``, after which the store
is asked again and records the token's use. Only credentials the store knew are kept,
by their digest. A cached read thus needs no worker thread and no database at all.

``HookTokens``: which webhook tokens exist, by their digest, for one generation of the
trigger rows; ``vouch`` asks it (and ``CredentialCache``) whether a large body comes
from someone the server knows (``api/limits.BodyLimit``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from moorage.errors import MoorageError
from moorage.security import secrets as sec
from moorage.security.roles import Actor
from moorage.services import triggers, users
from moorage.store.db import Database

HOOK_PATH = re.compile(r"/hooks/([^/]+)")
SESSION_COOKIE = "moorage_session"


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


class HookTokens:
    """Whether a webhook token exists, without a database read while no trigger row
    changed: the digests of every token, loaded again after a commit that touched the
    ``triggers`` table (``Database.generations["hooks"]``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._generation = -1
        self._digests: frozenset[str] = frozenset()

    async def known(self, token: str) -> bool:
        if self._generation != self.db.generations["hooks"]:
            await run_in_threadpool(self._load)
        return sec.digest(token) in self._digests

    def _load(self) -> None:
        generation = self.db.generations["hooks"]  # before the read
        with self.db.session() as session:
            tokens = triggers.hook_tokens(session)
        self._digests = frozenset(sec.digest(t) for t in tokens)
        self._generation = generation


def vouching(
    credentials: CredentialCache, hooks: HookTokens
) -> Callable[[MutableMapping[str, Any]], Awaitable[bool]]:
    """``BodyLimit``'s ``vouch``: True when a request (its ASGI scope) comes from someone
    the server knows: a POST to a webhook that exists, or a bearer token or session
    cookie it accepts (no CSRF check here; the route makes it). Raises nothing."""

    async def vouch(scope: MutableMapping[str, Any]) -> bool:
        hook = HOOK_PATH.fullmatch(scope["path"])
        if scope["method"] == "POST" and hook is not None:
            return await hooks.known(hook[1])
        connection = HTTPConnection(scope)
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        cookie = connection.cookies.get(SESSION_COOKIE)
        try:
            if scheme.lower() == "bearer" and token.strip():
                await credentials.token(token.strip())
                return True
            if not scheme and cookie:
                await credentials.cookie(cookie)
                return True
        except MoorageError:
            return False
        return False

    return vouch
